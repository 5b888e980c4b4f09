"""config/gunicorn.py's hooks: a metrics directory for each start, and a dead worker's live gauges dropped."""

import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from config import gunicorn as hooks

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


@pytest.fixture
def server():
    return SimpleNamespace(log=logging.getLogger("gunicorn.error"))


@pytest.fixture
def no_multiproc_dir(monkeypatch):
    monkeypatch.delenv(MULTIPROC_DIR, raising=False)
    monkeypatch.setattr(hooks, "_made_here", None)
    yield
    os.environ.pop(MULTIPROC_DIR, None)  # on_starting set it in this process, as in gunicorn's master


def test_each_start_without_a_directory_gets_a_new_empty_one_removed_on_exit(server, no_multiproc_dir):
    hooks.on_starting(server)
    first = Path(os.environ[MULTIPROC_DIR])
    assert first.is_dir() and list(first.iterdir()) == []
    hooks.on_exit(server)
    assert not first.exists()

    del os.environ[MULTIPROC_DIR]  # the next start is a new master, in the environment it was started in
    hooks.on_starting(server)
    second = Path(os.environ[MULTIPROC_DIR])
    hooks.on_exit(server)

    assert second != first


def test_a_directory_the_environment_names_is_made_and_kept(server, monkeypatch, tmp_path):
    named = tmp_path / "metrics"
    monkeypatch.setenv(MULTIPROC_DIR, str(named))
    monkeypatch.setattr(hooks, "_made_here", None)

    hooks.on_starting(server)
    hooks.on_exit(server)

    assert os.environ[MULTIPROC_DIR] == str(named)
    assert named.is_dir()


def test_a_dead_worker_leaves_its_counters_and_takes_its_live_gauges(monkeypatch, tmp_path, server):
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))
    for name in ("counter_4242.db", "histogram_4242.db", "gauge_livesum_4242.db", "gauge_livesum_4343.db"):
        (tmp_path / name).touch()

    hooks.child_exit(server, SimpleNamespace(pid=4242))

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "counter_4242.db",
        "gauge_livesum_4343.db",
        "histogram_4242.db",
    ]
