"""Batch compress and evaluate on a dask.distributed cluster (issue 14): a LocalCluster of two worker
processes on this machine gives the same bytes as the local run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from diffcode.image import write_png
from tests.conftest import per_pixel_unless_named

pytestmark = pytest.mark.slow  # subprocesses or a benchmark: seconds each (pytest -m 'not slow' skips them)

runner = CliRunner()
CK = ["--checkpoint", "decoder.npz", "--steps", "2"]


@pytest.fixture(scope="module")
def scheduler():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster:
        yield cluster.scheduler_address


@pytest.fixture()
def folder(tmp_path, checkpoint, monkeypatch) -> Path:
    checkpoint.save(tmp_path / "decoder.npz")
    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(11)
    for k in range(4):
        write_png(tmp_path / "imgs" / f"im{k}.png", rng.integers(0, 256, (4 + k, 6 + k, 3), dtype=np.uint8))
    for name in ("local", "cluster"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args):
    result = runner.invoke(cli.app, per_pixel_unless_named(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_batch_compress_on_a_cluster_gives_the_local_bytes(folder, scheduler):
    invoke("compress", "imgs", "--out-dir", "local", *CK)
    out = invoke("compress", "imgs", "--out-dir", "cluster", "--scheduler", scheduler, *CK)
    assert "4 of 4 files compressed" in out
    names = sorted(p.name for p in (folder / "local").iterdir())
    assert names == [f"im{k}.dfc" for k in range(4)] == sorted(p.name for p in (folder / "cluster").iterdir())
    for name in names:
        assert (folder / "local" / name).read_bytes() == (folder / "cluster" / name).read_bytes()


def test_a_failed_file_on_the_cluster_does_not_stop_the_batch(folder, scheduler):
    (folder / "imgs" / "im2.png").write_bytes(b"not an image")
    result = runner.invoke(cli.app, per_pixel_unless_named(["compress", "imgs", "--out-dir", "cluster", "--scheduler", scheduler, *CK]))
    assert result.exit_code == 1 and "3 of 4 files compressed" in result.stdout
    assert sorted(p.name for p in (folder / "cluster").iterdir()) == ["im0.dfc", "im1.dfc", "im3.dfc"]


def test_evaluate_on_a_cluster_gives_the_local_bytes(folder, scheduler):
    common = ["evaluate", "imgs/im0.png", "imgs/im3.png", "--no-figures", "--baselines", "none.csv", *CK]
    invoke(*common, "--work-dir", "local/cache", "--out-dir", "local", "--name", "t")
    invoke(*common, "--work-dir", "cluster/cache", "--out-dir", "cluster", "--name", "t", "--scheduler", scheduler)
    local = sorted((folder / "local" / "cache").rglob("*.dfc"))
    cluster = sorted((folder / "cluster" / "cache").rglob("*.dfc"))
    assert [p.name for p in local] == [p.name for p in cluster] and len(local) == 2
    for a, b in zip(local, cluster):
        assert a.read_bytes() == b.read_bytes()
    for a, b in zip(sorted((folder / "local" / "cache").rglob("*.json")), sorted((folder / "cluster" / "cache").rglob("*.json"))):
        ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
        same = lambda row: {k: v for k, v in row.items() if "seconds" not in k and k != "source"}  # noqa: E731
        assert same(ra) == same(rb) and Path(rb["source"]).resolve() == Path(ra["source"]).resolve()


def test_an_unreachable_scheduler_is_one_line(folder, monkeypatch):
    from diffcode import batch

    monkeypatch.setattr(batch, "CONNECT_SECONDS", 2)
    result = runner.invoke(cli.app, per_pixel_unless_named(["compress", "imgs", "--out-dir", "cluster", "--scheduler",
                                                            "tcp://127.0.0.1:9", *CK]))
    assert result.exit_code == 1 and "cannot reach the dask scheduler" in result.output, result.output
    assert not list((folder / "cluster").iterdir())


def _worker_that_dies_on(task, source: bytes, progress=None, stage_progress=None):
    """A stand-in for compress_data whose process dies on one file (as if killed or out of memory)."""
    import os

    from diffcode.batch import Outcome

    if task.source.endswith("poison"):
        os._exit(1)
    return Outcome(task.source, task.target, ok=True, file_bytes=len(source)), b"out:" + source


def test_a_dead_worker_costs_only_its_file(tmp_path, scheduler):
    from diffcode import batch

    tasks = [batch.Task(str(tmp_path / name), str(tmp_path / f"{name}.out")) for name in ("a", "poison", "b")]
    outcomes = {}

    def done(task, outcome, data):
        outcomes[task.source] = batch._finish(task, outcome, data)

    batch._run_dask(_worker_that_dies_on, tasks, {t.target: t.source.encode() for t in tasks}, scheduler, done)
    assert [outcomes[t.source].ok for t in tasks] == [True, False, True]
    assert "its worker failed" in outcomes[tasks[1].source].error and "\n" not in outcomes[tasks[1].source].error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.out", "b.out"]  # no partial file for the lost one
    assert (tmp_path / "a.out").read_bytes() == b"out:" + tasks[0].source.encode()
