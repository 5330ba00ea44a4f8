"""One settings module: every FVCORE_* variable is read there, and the CLI, training and the app
share its defaults, which are relative to the repository rather than the working directory (a run
started from another folder still shows up on the Runs page)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fvcore import settings
from fvcore.app import shell
from fvcore.cli import get_parser
from fvcore.errors import FvError
from fvcore.training.recipe import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Run from an unrelated folder with no FVCORE_* variable set."""
    for name in settings.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_are_beside_the_repository_not_the_working_directory(elsewhere):
    assert settings.REPO == ROOT
    assert settings.checkpoints_root() == ROOT / "checkpoints"
    assert settings.runs_db() == ROOT / "runs.db"
    assert settings.data_roots() == [ROOT.parent / "shared" / "datasets"]
    assert settings.samples_dir() is None


def test_the_cli_training_and_the_app_use_one_run_database(elsewhere):
    parser = get_parser()
    db = str(ROOT / "runs.db")
    assert parser.parse_args(["runs"]).db == db
    assert parser.parse_args(["zoo", "--table-only"]).runs_db == db
    assert TrainConfig(arch="cnn", data="d", out="o").runs_db == db
    assert shell.runs_db_default() == db
    assert parser.parse_args(["predict", "x.jpg"]).checkpoints == str(ROOT / "checkpoints")


def test_variables_override_the_defaults(elsewhere, monkeypatch):
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(elsewhere / "my.db"))
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(elsewhere / "zoo"))
    monkeypatch.setenv(settings.ENV_DATA, f"{elsewhere / 'a'}:{elsewhere / 'b'}")
    monkeypatch.setenv(settings.ENV_THREADS, "3")
    monkeypatch.setenv(settings.ENV_BACKEND, "PyTorch")
    assert TrainConfig(arch="cnn", data="d", out="o").runs_db == str(elsewhere / "my.db")
    assert get_parser().parse_args(["runs"]).db == str(elsewhere / "my.db")
    assert settings.checkpoints_root() == elsewhere / "zoo"
    assert settings.data_roots() == [elsewhere / "a", elsewhere / "b"]
    assert settings.threads() == 3 and settings.backend() == "pytorch"


@pytest.mark.parametrize("name,value,message", [
    (settings.ENV_BACKEND, "tensorrt", "choose one of onnx, pytorch"),
    (settings.ENV_THREADS, "many", "not a whole number"),
])
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(FvError, match=message) as info:
        settings.backend() if name == settings.ENV_BACKEND else settings.threads()
    assert name in str(info.value) and "\n" not in str(info.value)
