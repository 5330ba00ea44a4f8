"""The Train page through AppTest: pick a dataset, architectures and a preset, see an estimate,
queue the jobs (a duplicate refused in one line), an untrainable dataset said in one line, the
queue with progress and outcome lines, cancel; a public-mode visitor sees the queue only."""
from __future__ import annotations

from pathlib import Path

import pytest
import test_app
from streamlit.testing.v1 import AppTest
from test_app import ROOT, TIMEOUT, no_failure, open_page

from fvcore import settings
from fvcore.app import training
from fvcore.training import jobs
from fvcore.training.plans import plan_job
from fvcore.training.runs import log_epoch, start_run

navigation_mode = test_app.navigation_mode   # the same autouse fixture as tests/test_app.py


@pytest.fixture
def started(monkeypatch) -> list[str]:
    """Worker starts, recorded instead of spawned (the queue itself is real)."""
    calls: list[str] = []
    monkeypatch.setattr(training, "ensure_worker",
                        lambda db, slots=1: calls.append(str(db)) or True)
    return calls


@pytest.fixture
def page(checkpoint_root, tiny_data, tmp_path, monkeypatch, started) -> AppTest:
    data = tmp_path / "data"
    data.mkdir()
    (data / "shapes").symlink_to(tiny_data, target_is_directory=True)
    one = data / "zz-one-class" / "train" / "circle"   # listed after shapes
    one.mkdir(parents=True)
    for image in sorted((tiny_data / "train" / "circle").iterdir())[:3]:
        (one / image.name).write_bytes(image.read_bytes())
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(tmp_path / "checkpoints"))
    (tmp_path / "checkpoints").mkdir()
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    monkeypatch.setenv(settings.ENV_DATA, str(data))
    monkeypatch.setenv(settings.ENV_BACKEND, "pytorch")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    return open_page(at, "pages/train.py")


def frame(at: AppTest, column: str):
    """The first table on the page with ``column``."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def db_of(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


def test_queue_two_architectures_from_scratch_and_refuse_a_duplicate(page, tmp_path, started):
    no_failure(page)
    assert "No training jobs yet." in [i.value for i in page.info]
    page.radio(key="train_preset").set_value("scratch").run()
    page.multiselect(key="train_archs_scratch").set_value(["cnn", "cnn_attention"]).run()
    page.number_input(key="train_epochs_scratch").set_value(5).run()
    page.button(key="train_submit").click().run()
    no_failure(page)
    assert [s.value for s in page.success] == ["Queued cnn (scratch) on shapes.",
                                               "Queued cnn_attention (scratch) on shapes."]
    assert started, "the worker is started for the new jobs"
    listed = jobs.list_jobs(db_of(tmp_path))
    assert sorted(j.arch for j in listed) == ["cnn", "cnn_attention"]
    assert all(j.epochs == 5 and j.status == "queued" for j in listed)
    assert frame(page, "eta_min")["status"].tolist() == ["queued", "queued"]
    page.multiselect(key="train_archs_scratch").set_value(["cnn"]).run()
    page.button(key="train_submit").click().run()
    assert len(page.error) == 1 and page.error[0].value.startswith(
        "cnn: refused: job ") and "already trains cnn (scratch) on shapes" in page.error[0].value


def test_the_estimate_is_measured_per_architecture(page):
    page.radio(key="train_preset").set_value("scratch").run()
    page.multiselect(key="train_archs_scratch").set_value(["cnn"]).run()
    page.number_input(key="train_size_scratch").set_value(32).run()
    page.button(key="train_estimate").click().run()
    no_failure(page)
    table = frame(page, "basis")
    assert table["model"].tolist() == ["cnn"]
    assert table["estimate"][0].startswith("about ")
    assert "epochs of 90 training images" in table["basis"][0]


def test_an_untrainable_dataset_says_why_in_one_line(page):
    page.selectbox(key="train_dataset").set_value("zz-one-class").run()
    assert len(page.error) == 1 and page.error[0].value.startswith(
        "zz-one-class cannot be trained on:")
    assert "train_submit" not in [b.key for b in page.button]


def test_the_queue_shows_progress_outcomes_and_cancels(page, tmp_path, tiny_data):
    db = db_of(tmp_path)
    plans = [plan_job("scratch", arch, tiny_data, tmp_path / "checkpoints", dataset="shapes",
                      epochs=4) for arch in ("cnn", "vit", "cnn_attention")]
    made = [jobs.submit(db, dataset=p.dataset, arch=p.arch, preset=p.preset, out=p.out,
                        argv=p.argv, epochs=p.epochs) for p in plans]
    run_id = start_run(db, arch="cnn", dataset="shapes", fingerprint="x", out=str(made[0].out),
                       args={})
    for epoch in (1, 2):
        log_epoch(db, run_id, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.2 / epoch,
                               "train_acc": 0.5, "val_acc": 0.4 * epoch, "seconds": 30.0})
    jobs.claim(db, 1)   # the worker is this test: claims the oldest job (cnn)
    jobs.finish(db, made[0].id, "finished")
    jobs.claim(db, 1)
    jobs.finish(db, made[1].id, "failed", "exit status 1: error: out of memory")
    page.run()
    no_failure(page)
    table = frame(page, "eta_min").set_index("model")
    assert table.loc["cnn", "status"] == "finished" and table.loc["cnn", "epochs"] == "2/4"
    assert table.loc["cnn", "best_val_acc"] == pytest.approx(0.8)
    assert table.loc["vit", "message"] == "exit status 1: error: out of memory"
    page.selectbox(key="train_job").set_value(made[1].id).run()
    assert page.error[0].value == "failed: exit status 1: error: out of memory"
    page.selectbox(key="train_job").set_value(made[0].id).run()
    assert page.success[0].value.startswith("Finished: epoch 2/4 · best validation accuracy "
                                            "80.0%.")
    assert len(page.get("plotly_chart")) == 2   # loss and accuracy curves
    page.selectbox(key="train_job").set_value(made[2].id).run()
    page.button(key=f"train_cancel_{made[2].id}").click().run()
    assert jobs.get_job(db, made[2].id).status == "cancelled"


def test_a_public_visitor_sees_the_queue_but_cannot_train(page, tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_PUBLIC, "1")
    monkeypatch.setenv(settings.ENV_OPERATOR_TOKEN, "secret")
    page.run()
    assert any(i.value.startswith("Training is for the operator of this public server")
               for i in page.info)
    assert "train_submit" not in [b.key for b in page.button]


def test_eta_comes_from_the_measured_epochs(tmp_path, tiny_data):
    from fvcore.training.progress import job_progress
    db = db_of(tmp_path)
    p = plan_job("scratch", "cnn", tiny_data, tmp_path, epochs=10)
    job = jobs.submit(db, dataset=p.dataset, arch=p.arch, preset=p.preset, out=p.out,
                      argv=p.argv, epochs=p.epochs)
    assert job_progress(db, job).done == 0 and job_progress(db, job).eta_seconds is None
    run_id = start_run(db, arch="cnn", dataset="d", fingerprint="x", out=str(job.out), args={})
    for epoch, seconds in enumerate((50.0, 40.0, 60.0), start=1):
        log_epoch(db, run_id, {"epoch": epoch, "val_acc": 0.5, "seconds": seconds})
    got = job_progress(db, job)
    assert (got.done, got.eta_seconds, got.fraction) == (3, 7 * 50.0, 0.3)
    assert got.text == "epoch 3/10 · best validation accuracy 50.0% · about 6 min left"
