"""The SQLite run registry: every training run, its arguments, per-epoch metrics and outcome.

WAL mode lets the app read while training writes. The checkpoint card stays the source of truth
for a finished model; this registry is the record of runs, including failed and interrupted ones.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any, Optional

from fvcore.checkpoints.catalog import DOMAIN_ACC, domain_accuracies

DEFAULT_DB = "runs.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    arch TEXT NOT NULL,
    dataset TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    out TEXT NOT NULL,
    args TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    updated REAL NOT NULL,
    ended REAL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    final TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL,
    lr REAL, seconds REAL, images_per_s REAL,
    domains TEXT,
    PRIMARY KEY (run_id, epoch)
);
"""

STATUSES = ("running", "finished", "failed", "interrupted")


def connect(db: str | Path) -> sqlite3.Connection:
    """Open the registry (created on first use) in WAL mode."""
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(db), timeout=30)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA busy_timeout=30000")
    con.executescript(SCHEMA)
    if "domains" not in {r["name"] for r in con.execute("PRAGMA table_info(epochs)")}:
        try:   # a registry written before per-source validation accuracy existed
            con.execute("ALTER TABLE epochs ADD COLUMN domains TEXT")
        except sqlite3.OperationalError:   # another process added it just now
            pass
    return con


def start_run(db: str | Path, *, arch: str, dataset: str, fingerprint: str, out: str,
              args: dict[str, Any], run_id: Optional[str] = None) -> str:
    """Record a run as running (a resumed run keeps its id) and return its id."""
    run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    now = time.time()
    with closing(connect(db)) as con, con:
        con.execute(
            "INSERT INTO runs (id, arch, dataset, fingerprint, out, args, host, pid, started,"
            " updated, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')"
            " ON CONFLICT(id) DO UPDATE SET status='running', pid=excluded.pid,"
            " host=excluded.host, updated=excluded.updated, ended=NULL, message=''",
            (run_id, arch, dataset, fingerprint, out, json.dumps(args, sort_keys=True),
             socket.gethostname(), os.getpid(), now, now))
    return run_id


def log_epoch(db: str | Path, run_id: str, row: dict[str, Any]) -> None:
    """Store one epoch's metrics (replacing a row of the same epoch after a resume); the
    validation accuracy per source (``val_acc:<name>`` keys) goes into ``domains`` as JSON."""
    cols = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
            "images_per_s")
    domains = domain_accuracies(row)
    with closing(connect(db)) as con, con:
        con.execute(f"INSERT OR REPLACE INTO epochs (run_id, {', '.join(cols)}, domains) VALUES "
                    f"(?, {', '.join('?' * len(cols))}, ?)",
                    (run_id, *[row.get(c) for c in cols], json.dumps(domains) if domains else None))
        con.execute("UPDATE runs SET updated=? WHERE id=?", (time.time(), run_id))


def end_run(db: str | Path, run_id: str, status: str, *, message: str = "",
            final: Optional[dict[str, Any]] = None) -> None:
    """Mark a run finished, failed or interrupted."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    with closing(connect(db)) as con, con:
        con.execute("UPDATE runs SET status=?, message=?, final=?, ended=?, updated=? WHERE id=?",
                    (status, message[:500], json.dumps(final or {}, sort_keys=True), time.time(),
                     time.time(), run_id))


def alive(pid: Optional[int]) -> bool:
    """Whether a process of this id exists on this host (a zombie counts as ended)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def mark_interrupted(db: str | Path) -> int:
    """Runs still marked running whose process on this host is gone become 'interrupted'."""
    with closing(connect(db)) as con, con:
        rows = con.execute("SELECT id, pid FROM runs WHERE status='running' AND host=?",
                           (socket.gethostname(),)).fetchall()
        dead = [r["id"] for r in rows if not alive(r["pid"])]
        con.executemany("UPDATE runs SET status='interrupted', message='process ended without "
                        "finishing (killed or crashed)' WHERE id=?", [(d,) for d in dead])
    return len(dead)


def list_runs(db: str | Path) -> list[dict[str, Any]]:
    """All runs, newest first (dead 'running' runs are reported as interrupted)."""
    if not Path(db).is_file():
        return []
    mark_interrupted(db)
    with closing(connect(db)) as con:
        rows = con.execute("SELECT r.*, COUNT(e.epoch) AS epochs, MAX(e.val_acc) AS best_val_acc"
                           " FROM runs r LEFT JOIN epochs e ON e.run_id = r.id"
                           " GROUP BY r.id ORDER BY r.started DESC").fetchall()
    return [{**dict(r), "args": json.loads(r["args"]), "final": json.loads(r["final"])}
            for r in rows]


def run_epochs(db: str | Path, run_id: str) -> list[dict[str, Any]]:
    """Per-epoch metrics of one run, in epoch order (with a ``val_acc:<name>`` key per source of
    a run on several dataset folders)."""
    if not Path(db).is_file():
        return []
    with closing(connect(db)) as con:
        rows = con.execute("SELECT * FROM epochs WHERE run_id=? ORDER BY epoch", (run_id,))
        epochs = [dict(r) for r in rows.fetchall()]
    for epoch in epochs:
        domains = json.loads(epoch.pop("domains") or "{}")
        epoch.update({DOMAIN_ACC + name: acc for name, acc in domains.items()})
    return epochs
