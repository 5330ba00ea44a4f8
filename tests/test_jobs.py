"""The training queue: presets make the right ``fvcore train`` jobs, a duplicate is refused, a job
is cancelled, a dead worker's job goes back to the queue -- and a job whose worker and process
are killed mid-run resumes and ends with the same weights as an uninterrupted one."""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from fvcore.checkpoints.card import ModelCard
from fvcore.cli import main
from fvcore.errors import FvError
from fvcore.training import jobs
from fvcore.training.plans import PLANS, estimate, plan_job
from fvcore.training.progress import job_progress
from fvcore.training.runs import list_runs
from fvcore.training.worker import ensure_worker, worker_running


def queue(db: Path, job) -> jobs.Job:
    return jobs.submit(db, dataset=job.dataset, arch=job.arch, preset=job.preset, out=job.out,
                       argv=job.argv, epochs=job.epochs)


def test_the_quick_preset_trains_the_head_of_imagenet_lite0_on_cached_features(tiny_data,
                                                                                tmp_path):
    job = plan_job("quick", "efficientnet_lite0", tiny_data, tmp_path / "ck", dataset="shapes")
    argv = " ".join(job.argv)
    assert "--pretrained imagenet" in argv and "--finetune head" in argv
    assert "--no-augment" in argv   # head-only without augmentation: features computed once
    assert job.out == (tmp_path / "ck").resolve() / "shapes" / "efficientnet_lite0-quick"
    with pytest.raises(FvError, match="Quick preset trains efficientnet_lite0, not resnet50"):
        plan_job("quick", "resnet50", tiny_data, tmp_path)


def test_the_finetune_preset_runs_lp_ft_and_wise_ft_where_imagenet_weights_are_offline(
        tiny_data, tmp_path):
    lite = " ".join(plan_job("finetune", "efficientnet_lite1", tiny_data, tmp_path).argv)
    for flag in ("--pretrained imagenet", "--probe-epochs 10", "--freeze-bn", "--wise",
                 "--backbone-lr-scale 0.2", "--select-by source_accuracy"):
        assert flag in lite
    resnet = " ".join(plan_job("finetune", "resnet50", tiny_data, tmp_path).argv)
    assert "--pretrained auto" in resnet   # torchvision's weights need the internet: maybe random
    assert "--probe-epochs" not in resnet and "--wise" not in resnet
    assert "--select-by" not in resnet   # the validation loss, as the zoo's plain recipe


def test_epochs_and_image_size_override_the_preset_within_limits(tiny_data, tmp_path):
    job = plan_job("scratch", "cnn", tiny_data, tmp_path, epochs=12, image_size=64)
    assert (job.epochs, job.image_size) == (12, 64)
    assert "--min-epochs 12" in " ".join(job.argv)   # early stopping may still act at the end
    with pytest.raises(FvError, match="vit trains at 224 px"):
        plan_job("finetune", "vit", tiny_data, tmp_path, image_size=128)
    with pytest.raises(FvError, match="between 32 and 1024"):
        plan_job("scratch", "cnn", tiny_data, tmp_path, image_size=8)
    assert set(PLANS) == {"quick", "finetune", "scratch"}


def test_the_estimate_comes_from_a_measured_step(tiny_data, tmp_path):
    counts = {"train": 90, "validation": 18, "test": 24}
    small = estimate(plan_job("scratch", "cnn", tiny_data, tmp_path, epochs=2, image_size=32),
                     counts, 3)
    longer = estimate(plan_job("scratch", "cnn", tiny_data, tmp_path, epochs=20, image_size=32),
                      counts, 3)
    assert small.per_image_train > 0 and small.seconds > 0
    assert longer.seconds > 5 * small.seconds   # ten times the epochs, same measured step size
    assert "90 training images" in small.basis
    quick = estimate(plan_job("quick", "efficientnet_lite0", tiny_data, tmp_path), counts, 3)
    assert "one feature pass over 132 images" in quick.basis


def test_the_fine_tune_estimate_counts_the_probe_pass_and_the_wise_ft_passes(
        tiny_data, tmp_path, monkeypatch):
    from dataclasses import replace

    from fvcore.training import plans
    monkeypatch.setattr(plans, "_measure", lambda arch, size, batch, train, n: 0.03 if train
                        else 0.01)   # seconds per image, fixed: the sums are exact
    counts = {"train": 90, "validation": 18, "test": 24}
    job = plan_job("finetune", "efficientnet_lite0", tiny_data, tmp_path, epochs=2)
    assert job.probe_epochs == 10 and job.wise
    full, plain = estimate(job, counts, 3), estimate(replace(job, probe_epochs=0, wise=False),
                                                     counts, 3)
    assert full.seconds - plain.seconds == pytest.approx(0.01 * ((90 + 18) + 9 * 18))
    assert plain.seconds == pytest.approx(2 * (0.03 * 90 + 0.01 * 18) + 0.01 * 24)
    assert "LP-FT probe's feature pass and 9 WiSE-FT validation passes" in full.basis


def test_a_duplicate_job_or_a_finished_folder_is_refused_in_one_line(tiny_data, tmp_path):
    db = tmp_path / "runs.db"
    job = plan_job("scratch", "cnn", tiny_data, tmp_path / "ck", dataset="shapes")
    first = queue(db, job)
    assert first.status == "queued" and first.label == "cnn (scratch) on shapes"
    with pytest.raises(FvError, match=f"refused: job {first.id} already trains cnn"):
        queue(db, job)
    jobs.cancel(db, first.id)
    job.out.mkdir(parents=True)
    (job.out / "card.json").write_text("{}")
    with pytest.raises(FvError, match="already holds a trained model"):
        queue(db, job)


def test_cancelling_a_queued_job_ends_it_before_it_starts(tiny_data, tmp_path):
    db = tmp_path / "runs.db"
    job = queue(db, plan_job("scratch", "cnn", tiny_data, tmp_path / "ck"))
    assert jobs.cancel(db, job.id).status == "cancelled"
    assert not jobs.pending(db)
    with pytest.raises(FvError, match="already cancelled"):
        jobs.cancel(db, job.id)


def test_a_dead_workers_job_is_queued_again_then_failed_after_three_attempts(tiny_data,
                                                                             tmp_path):
    db = tmp_path / "runs.db"
    job = queue(db, plan_job("scratch", "cnn", tiny_data, tmp_path / "ck"))
    dead = 2**22 + 12345   # no such process
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        claimed = jobs.claim(db, dead)
        assert claimed.id == job.id and claimed.attempts == attempt
        assert jobs.recover(db) == [job.id]
        after = jobs.get_job(db, job.id)
        if attempt < jobs.MAX_ATTEMPTS:
            assert after.status == "queued" and "resumes from the last epoch" in after.message
    assert after.status == "failed" and "its worker ended 3 times" in after.message


def test_the_cli_submits_lists_and_cancels(tiny_data, tmp_path, capsys):
    db = str(tmp_path / "runs.db")
    assert main(["jobs", "submit", "--data", str(tiny_data), "--arch", "cnn", "--preset",
                 "scratch", "--runs-db", db, "--checkpoints", str(tmp_path), "--no-worker"]) == 0
    job_id = capsys.readouterr().out.split()[1].rstrip(":")
    assert main(["jobs", "list", "--runs-db", db]) == 0
    assert f"{job_id}" in capsys.readouterr().out
    assert main(["jobs", "cancel", job_id, "--runs-db", db]) == 0
    assert capsys.readouterr().out.strip() == f"{job_id}: cancelled"


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_killed_server_and_job_resume_to_the_same_model_as_an_uninterrupted_run(
        tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")   # bit-for-bit equal runs need equal threads
    db = tmp_path / "runs.db"
    plans = [plan_job("scratch", "cnn", tiny_data, tmp_path / name, dataset="shapes", epochs=16,
                      image_size=32) for name in ("killed", "reference")]
    killed, reference = (queue(db, p) for p in plans)
    assert ensure_worker(db) and not ensure_worker(db)   # one worker per queue
    _wait(lambda: job_progress(db, jobs.get_job(db, killed.id)).done >= 2, 240,
          "two epochs of the first job")
    running = jobs.get_job(db, killed.id)
    assert running.status == "running" and job_progress(db, running).done < 16
    # the server goes down hard, taking the worker and the training process with it
    os.killpg(running.worker, signal.SIGKILL)
    os.killpg(running.pid, signal.SIGKILL)
    _wait(lambda: not worker_running(db), 10, "the lock of the dead worker")
    assert jobs.get_job(db, killed.id).status == "running"   # as the dead worker left it
    assert ensure_worker(db)   # what the Train page does on its next visit
    _wait(lambda: not jobs.pending(db), 300, "both jobs to finish")
    done = {j.id: j for j in jobs.list_jobs(db)}
    assert done[killed.id].status == done[reference.id].status == "finished"
    assert done[killed.id].attempts == 2 and done[reference.id].attempts == 1
    a, b = (load_file(str(p.out / "model.safetensors")) for p in plans)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    cards = [ModelCard.read(p.out) for p in plans]
    assert cards[0].metrics["accuracy"] == cards[1].metrics["accuracy"]
    assert cards[0].best_epoch == cards[1].best_epoch
    outcomes = {r["out"]: r["status"] for r in list_runs(db)}
    assert outcomes == {str(p.out): "finished" for p in plans}


@pytest.mark.slow
def test_a_job_whose_process_fails_ends_with_its_one_line_reason(tiny_data, tmp_path):
    from fvcore.training.worker import work
    db = tmp_path / "runs.db"
    data = tmp_path / "gone"
    shutil.copytree(tiny_data, data)
    job = queue(db, plan_job("scratch", "cnn", data, tmp_path / "ck", epochs=2, image_size=32))
    shutil.rmtree(data)   # the dataset disappears before the job starts
    assert work(db, idle=0.2, poll=0.1) == 1
    failed = jobs.get_job(db, job.id)
    assert failed.status == "failed"
    assert failed.message.startswith("exit status 1: error: ") and "gone" in failed.message
    assert "\n" not in failed.message
