"""Many users at once on the real app: several browser sessions (one Playwright context each,
one Chromium) upload photos on the Predict page until a number of uploads have been answered.
Every answer is checked against the Python API (each model's top-1, its probability as shown,
the top-k bars at full precision, the ensemble) so a session can never pass with another
session's result, and the server's resident memory is sampled throughout.

``run_load`` is the whole measurement; tests/test_load.py asserts on its report and
bench/load.py prints it for any checkpoints folder."""
from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from appserver import CHROMIUM, CHROMIUM_ARGS, NOT_RUNNING, WAIT_MS, rss_mb, serve_app
from PIL import Image, ImageDraw

PHOTOS = ("chelsea", "coffee", "astronaut")
ATOL = 1e-4          # probabilities: the browser's numbers vs the API's (same backend, same bytes)
ENSEMBLE = "Ensemble (soft vote)"
POLL_MS = 100        # how often the browser re-evaluates a wait condition
UPLOAD_WAIT_MS = 15_000
ANSWER_WAIT_MS = WAIT_MS     # a cold server under a starved CPU needs it for its first answers
CONTEXT = {"viewport": {"width": 1024, "height": 720}, "reduced_motion": "reduce"}

READ_ANSWER = """a => {
  if (document.querySelector('[data-testid="stStatusWidget"]')) return null;
  const main = document.querySelector('[data-testid="stMain"]');
  const heads = [...main.querySelectorAll('h3')].map(h => h.innerText.trim());
  if (!heads.includes(a.name)) return null;
  const text = (m, id) => (m.querySelector(`[data-testid="${id}"]`) || {innerText: ''})
      .innerText.trim();
  const metrics = [...main.querySelectorAll('[data-testid="stMetric"]')].map(m => ({
      label: text(m, 'stMetricLabel'), value: text(m, 'stMetricValue'),
      delta: text(m, 'stMetricDelta')}));
  const charts = [...main.querySelectorAll('.js-plotly-plot')].map(g => g._fullData
      && g._fullData.length ? {x: Array.from(g._fullData[0].x), y: Array.from(g._fullData[0].y)}
      : null);
  if (metrics.length < a.metrics || charts.length < a.charts || charts.includes(null)) return null;
  return {heads, metrics, charts,
          exceptions: main.querySelectorAll('[data-testid="stException"]').length};
}"""
"""The answer on a Predict page once the run is over and every model's block has drawn."""


@dataclass
class Expected:
    """What the Python API says for one image: each shown model's classes and probabilities."""

    name: str
    probs: dict[str, np.ndarray]
    classes: dict[str, list[str]]


@dataclass
class LoadReport:
    """The numbers of one load run."""

    sessions: int
    warmup: int                      # uploads answered before the measured phase
    latencies_ms: list[float] = field(default_factory=list)   # file chosen -> answer drawn
    problems: list[str] = field(default_factory=list)         # wrong answers, one line each
    resent: int = 0                  # files the browser dropped and the driver set again
    wall_s: float = 0.0              # the measured phase
    rss_cold: float = 0.0            # server MiB with every session open, before any upload
    rss: list[tuple[int, float]] = field(default_factory=list)
    """(uploads answered in the measured phase, server MiB): after the warm-up, then after
    every answer."""

    @property
    def uploads(self) -> int:
        return len(self.latencies_ms)

    @property
    def rss_start(self) -> float:
        return self.rss[0][1] if self.rss else float("nan")

    @property
    def rss_end(self) -> float:
        return self.rss[-1][1] if self.rss else float("nan")

    @property
    def rss_peak(self) -> float:
        return max((mb for _, mb in self.rss), default=float("nan"))

    def rss_at(self, fraction: float) -> float:
        """Server MiB once ``fraction`` of the measured uploads had been answered."""
        return self.rss[round(fraction * (len(self.rss) - 1))][1] if self.rss else float("nan")

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> str:
        """One line for logs: uploads, sessions, latency percentiles, RSS, wall time."""
        rate = self.uploads / self.wall_s if self.wall_s else 0.0
        return (f"load: {self.uploads} uploads answered by {self.sessions} sessions in "
                f"{self.wall_s:.1f} s ({rate:.2f}/s) after {self.warmup} warm-up; latency p50 "
                f"{self.percentile(50):.0f} ms, p95 {self.percentile(95):.0f} ms, max "
                f"{max(self.latencies_ms, default=0):.0f} ms; server RSS {self.rss_start:.0f} -> "
                f"{self.rss_at(0.5):.0f} -> {self.rss_end:.0f} MiB "
                f"({self.rss_end - self.rss_start:+.1f}; peak {self.rss_peak:.0f}, "
                f"{self.rss_cold:.0f} before the first upload); "
                f"{len(self.problems)} wrong answer(s), {self.resent} upload(s) set again")

    def as_dict(self) -> dict:
        """The report as plain JSON-able data (the RSS trace every tenth of the run)."""
        trace = sorted({round(f * (len(self.rss) - 1)) for f in np.linspace(0, 1, 11)}) \
            if self.rss else []
        return {"uploads": self.uploads, "sessions": self.sessions, "warmup": self.warmup,
                "wall_s": round(self.wall_s, 2),
                "uploads_per_s": round(self.uploads / self.wall_s, 3) if self.wall_s else None,
                "latency_ms": {"p50": round(self.percentile(50), 1),
                               "p95": round(self.percentile(95), 1),
                               "max": round(max(self.latencies_ms, default=0), 1),
                               "mean": round(statistics.fmean(self.latencies_ms), 1)
                               if self.latencies_ms else None},
                "rss_mib": {"cold": round(self.rss_cold, 1), "start": round(self.rss_start, 1),
                            "end": round(self.rss_end, 1), "peak": round(self.rss_peak, 1),
                            "trace": [[self.rss[i][0], round(self.rss[i][1], 1)]
                                      for i in trace]},
                "resent": self.resent, "problems": self.problems}


# -- the images ---------------------------------------------------------------------------------

def _generated(rng: np.random.Generator, size: int) -> Image.Image:
    """Coloured shapes on noise, different for every draw."""
    image = Image.fromarray(rng.integers(0, 90, (size, size, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.integers(0, size * 3 // 4, 2)
        r = int(rng.integers(size // 8, size // 3))
        colour = tuple(int(c) for c in rng.integers(40, 256, 3))
        shape = (draw.ellipse, draw.rectangle)[int(rng.integers(0, 2))]
        shape((int(x), int(y), int(x) + r, int(y) + r), fill=colour)
    return image


def make_images(folder: Path, n: int, *, seed: int = 0) -> list[Path]:
    """``n`` different image files: scikit-image's photos (each a different crop, size and
    format) and, every third, generated shapes. Different bytes every time, so every upload is
    a real prediction, never the app's cached answer to an earlier file."""
    from skimage import data
    folder.mkdir(parents=True, exist_ok=True)
    photos = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in PHOTOS]
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n):
        if i % 3 == 2:
            image, kind = _generated(rng, int(rng.integers(64, 160))), "shapes"
        else:
            kind = PHOTOS[(i - i // 3) % len(PHOTOS)]    # the photos in turn
            photo = photos[PHOTOS.index(kind)]
            w, h = photo.size
            cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            side = int(rng.integers(96, 256))
            image = photo.crop((x, y, x + cw, y + ch)).resize((side, side * ch // cw))
        path = folder / f"{i:03d}-{kind}.{'png' if i % 2 else 'jpg'}"
        image.save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
        files.append(path)
    return files


# -- what the answers must be -------------------------------------------------------------------

def shown_models(root: Path):
    """The entries the app shows by default, named as it names them (the sidebar's first
    dataset, every model selected)."""
    from fvcore.app.frames import short_names
    from fvcore.checkpoints.catalog import datasets, scan
    entries, _ = scan(root)
    groups = datasets(entries)
    if not groups:
        raise FileNotFoundError(f"no loadable checkpoints under {root}")
    dataset = sorted(groups, key=lambda d: (-len(groups[d]), d))[0]
    return short_names(groups[dataset], dataset)


def expected_answers(root: Path, files: Sequence[Path]) -> tuple[list[str], dict[str, Expected]]:
    """Model names in page order, and the Python API's answer for every file."""
    from fvcore.inference.loading import load_checkpoint
    entries = shown_models(root)
    answers = {f.name: Expected(f.name, {}, {}) for f in files}
    for entry in entries:
        clf = load_checkpoint(entry.path)
        probs = clf.predict([str(f) for f in files])
        for f, p in zip(files, probs, strict=True):
            answers[f.name].probs[entry.name] = np.asarray(p, dtype=np.float64)
            answers[f.name].classes[entry.name] = list(clf.classes)
    return [e.name for e in entries], answers


def shows_ensemble(want: Expected, models: Sequence[str]) -> bool:
    """Whether the page adds the soft-voting ensemble (several models, the same classes)."""
    return len(models) > 1 and len({tuple(want.classes[m]) for m in models}) == 1


def _percent_ok(shown: str, prob: float) -> bool:
    """The page's ``{p:.0%}`` text, allowing for a value on a rounding boundary."""
    return any(shown.startswith(f"{p:.0%}") for p in (prob - ATOL, prob, prob + ATOL))


def check_answer(shown: dict, want: Expected, models: Sequence[str], k: int = 5) -> list[str]:
    """Every way the page's answer differs from the API's (empty when it is right)."""
    name = want.name
    problems = []
    if shown["heads"] != [name]:
        problems.append(f"{name}: the page shows images {shown['heads']}")
    if shown["exceptions"]:
        problems.append(f"{name}: the page shows an exception")
    metrics = {m["label"]: m for m in shown["metrics"]}
    for i, model in enumerate(models):
        probs, classes = want.probs[model], want.classes[model]
        metric = metrics.get(model)
        if metric is None:
            problems.append(f"{name}: no answer from {model}")
            continue
        label = metric["value"]
        p = probs[classes.index(label)] if label in classes else -1.0
        if p < probs.max() - ATOL:
            problems.append(f"{name}: {model} shows {label}, the API says "
                            f"{classes[int(probs.argmax())]}")
        if not _percent_ok(metric["delta"], p):
            problems.append(f"{name}: {model} shows {metric['delta']!r}, the API {p:.4f}")
        chart = shown["charts"][i] if i < len(shown["charts"]) else {"x": [], "y": []}
        top = np.sort(probs)[::-1][:min(k, len(classes))]
        got = [probs[classes.index(y)] if y in classes else -1.0 for y in chart["y"]]
        if (len(chart["x"]) != len(top) or not np.allclose(chart["x"], top, atol=ATOL)
                or not np.allclose(got, chart["x"], atol=ATOL)):
            problems.append(f"{name}: {model}'s top-{len(top)} bars {chart} differ from the "
                            f"API's {np.round(top, 4).tolist()}")
    if shows_ensemble(want, models):
        mean = np.mean([want.probs[m] for m in models], axis=0)
        classes = want.classes[models[0]]
        ens = metrics.get(ENSEMBLE, {"value": "", "delta": ""})
        p = mean[classes.index(ens["value"])] if ens["value"] in classes else -1.0
        if p < mean.max() - ATOL or not _percent_ok(ens["delta"], p):
            problems.append(f"{name}: the ensemble shows {ens}, the API "
                            f"{classes[int(mean.argmax())]} {mean.max():.4f}")
    return problems


# -- the sessions -------------------------------------------------------------------------------

async def _open_predict(context, url: str, shots: Path):
    """A new session on the Predict page, ready for an upload."""
    page = await context.new_page()
    page.set_default_timeout(ANSWER_WAIT_MS)
    try:
        await page.goto(f"{url}/predict")
        await page.get_by_text("Upload one or more photos").first.wait_for(timeout=WAIT_MS)
    except Exception:
        await page.screenshot(path=shots / "failure-opening.png")
        raise
    return page


async def ask(page, path: Path, n_models: int, ensemble: bool) -> tuple[dict, float, int]:
    """Clear the uploader, upload ``path`` and read the answer: (answer, milliseconds from
    choosing the file to every model's block drawn, times the file had to be set again)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    delete = page.locator('[data-testid="stFileChipDeleteBtn"]')
    while await delete.count():
        await delete.first.click()
        await page.get_by_text("Upload one or more photos").first.wait_for()
        await page.wait_for_function(NOT_RUNNING, polling=POLL_MS)
    chooser = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    chip = page.locator('[data-testid="stFileChipName"]', has_text=path.name)
    start = time.perf_counter()
    for resent in range(3):  # a file set while the page re-renders can be dropped: set again
        await chooser.set_input_files(str(path))
        try:
            await chip.wait_for(timeout=UPLOAD_WAIT_MS)
            break
        except PlaywrightTimeout:
            if resent == 2:
                raise
    handle = await page.wait_for_function(
        READ_ANSWER, arg={"name": path.name, "metrics": n_models + ensemble, "charts": n_models},
        polling=POLL_MS, timeout=ANSWER_WAIT_MS)
    answer = await handle.json_value()
    return answer, (time.perf_counter() - start) * 1000.0, resent


async def _worker(page, jobs: asyncio.Queue, answers: dict[str, Expected], models: list[str],
                  report: LoadReport, measured: bool, pid: int, shots: Path) -> None:
    """Take files from ``jobs`` until none are left, checking every answer."""
    ensemble = shows_ensemble(next(iter(answers.values())), models)
    while True:
        try:
            path = jobs.get_nowait()
        except asyncio.QueueEmpty:
            return
        try:
            shown, ms, resent = await ask(page, path, len(models), ensemble)
        except Exception:
            await page.screenshot(path=shots / f"failure-{path.stem}.png")
            raise
        report.problems += check_answer(shown, answers[path.name], models)
        report.resent += resent
        if measured:
            report.latencies_ms.append(ms)
            report.rss.append((report.uploads, rss_mb(pid)))


async def _drive(url: str, pid: int, warm: list[Path], measured: list[Path],
                 answers: dict[str, Expected], models: list[str], report: LoadReport,
                 shots: Path) -> None:
    from playwright.async_api import async_playwright

    async def run(files: list[Path], measured: bool) -> None:
        jobs: asyncio.Queue = asyncio.Queue()
        for path in files:
            jobs.put_nowait(path)
        await asyncio.gather(*(_worker(p, jobs, answers, models, report, measured, pid, shots)
                               for p in pages))

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            contexts = [await browser.new_context(**CONTEXT) for _ in range(report.sessions)]
            first = await _open_predict(contexts[0], url, shots)  # the server's first run
            pages = [first, *await asyncio.gather(*(_open_predict(c, url, shots)
                                                    for c in contexts[1:]))]
            report.rss_cold = rss_mb(pid)
            await run(warm, False)
            report.rss.append((0, rss_mb(pid)))
            start = time.perf_counter()
            await run(measured, True)
            report.wall_s = time.perf_counter() - start
        finally:
            await browser.close()


def run_load(root: Path, *, sessions: int = 4, uploads: int = 200, warmup: int = 4,
             timeout: float = 300.0, workdir: Optional[Path] = None,
             env: Optional[dict[str, str]] = None) -> LoadReport:
    """Serve the app on ``root``'s checkpoints, warm it up with ``warmup`` uploads per session,
    then let ``sessions`` browser sessions share ``uploads`` uploads; every answer checked.
    Raises TimeoutError when the browsers' part (opening the sessions, the warm-up and the
    measured uploads) takes longer than ``timeout`` seconds."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="fvcore-load-"))
    files = make_images(workdir / "images", warmup * sessions + uploads)
    models, answers = expected_answers(root, files)
    report = LoadReport(sessions=sessions, warmup=warmup * sessions)
    from fvcore import settings
    server_env = {settings.ENV_CHECKPOINTS: str(root),
                  settings.ENV_RUNS_DB: str(workdir / "runs.db"),
                  settings.ENV_SAMPLES: "", **(env or {})}
    with serve_app(server_env, workdir / "streamlit.log") as app:
        run = _drive(app.url, app.process.pid, files[:warmup * sessions],
                     files[warmup * sessions:], answers, models, report, workdir)
        try:
            asyncio.run(asyncio.wait_for(run, timeout))
        except asyncio.TimeoutError:
            raise TimeoutError(f"the load run took over {timeout:.0f} s ({report.uploads} of "
                               f"{uploads} uploads answered); server log: {app.log}") from None
        except Exception as exc:
            exc.add_note(f"server log and screenshots: {workdir}")
            raise
    return report
