"""Cold start of the app: ``streamlit run app.py`` headless on a free port, timed until the health
endpoint answers and then until the home page's script has run for a first client session.

    python bench/coldstart.py [--app app.py]

The client speaks Streamlit's own websocket protocol (a ``rerun_script`` BackMsg, then ForwardMsgs
until ``script_finished``), so no browser is needed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from appserver import free_port, stop, wait_healthy  # noqa: E402 - needs the path above


def _first_run(port: int, timeout: float) -> dict:
    """Open a session, ask for the home page, wait for ``script_finished``."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect
    exceptions = []
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                 max_size=None, open_timeout=timeout) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        ws.send(msg.SerializeToString())
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(ws.recv(timeout=timeout))
            kind = fwd.WhichOneof("type")
            if kind == "delta" and fwd.delta.new_element.WhichOneof("type") == "exception":
                exceptions.append(fwd.delta.new_element.exception.message[:200])
            if kind == "script_finished":
                return {"status": int(fwd.script_finished), "exceptions": exceptions}


def cold_start(app: Path, *, env: Optional[dict] = None, timeout: float = 120.0) -> dict:
    """Seconds from process start to health OK and to the end of the first page run."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
           "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=app.parent, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout, poll=0.05)
        health = time.perf_counter() - start
        run = _first_run(port, timeout)
        rendered = time.perf_counter() - start
    finally:
        stop(proc, grace=10)
    return {"health_s": health, "first_render_s": rendered, **run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", default=str(ROOT / "app.py"))
    print(json.dumps(cold_start(Path(parser.parse_args().app).resolve()), indent=2))


if __name__ == "__main__":
    main()
