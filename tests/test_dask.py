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
    from diffcode import jobs

    monkeypatch.setattr(jobs, "CONNECT_SECONDS", 2)
    result = runner.invoke(cli.app, per_pixel_unless_named(["compress", "imgs", "--out-dir", "cluster", "--scheduler",
                                                            "tcp://127.0.0.1:9", *CK]))
    assert result.exit_code == 1 and "cannot reach the dask scheduler" in result.output, result.output
    assert not list((folder / "cluster").iterdir())


def _worker_that_dies_on(name: str) -> str:
    """A stand-in for a job whose process dies on one item (as if killed or out of memory)."""
    import os

    if name == "poison":
        os._exit(1)
    return "out:" + name


@pytest.mark.parametrize("where", ["processes", "cluster"])
def test_a_dead_worker_costs_only_its_item(where, request):
    """The job runner's one policy, for batches and evaluate alike: the item whose worker dies is
    reported in one line, the others finish."""
    from diffcode import jobs

    results, lost = {}, {}
    scheduler = request.getfixturevalue("scheduler") if where == "cluster" else None
    jobs.in_parallel(_worker_that_dies_on, [(name, (name,)) for name in ("a", "poison", "b")], jobs=2,
                     scheduler=scheduler, done=results.__setitem__, lost=lost.__setitem__)
    assert "poison" in lost and set(results) | set(lost) == {"a", "poison", "b"} and not set(results) & set(lost)
    assert all("its worker failed" in message and "\n" not in message for message in lost.values())
    if where == "cluster":  # the scheduler moves the others to a live worker; a broken local pool may lose them too
        assert results == {"a": "out:a", "b": "out:b"}


def test_a_batch_writes_nothing_for_a_lost_file(folder, monkeypatch):
    from diffcode import batch, jobs

    def lose_one(worker, calls, *, done, lost, jobs=1, scheduler=None):
        for task, args in calls:
            if task.source.endswith("im1.png"):
                lost(task, "its worker failed (BrokenProcessPool: gone)")
            else:
                done(task, (batch.Outcome(task.source, task.target, ok=True), b"out"))

    monkeypatch.setattr(jobs, "in_parallel", lose_one)
    tasks = batch.plan([Path("imgs/im0.png"), Path("imgs/im1.png")], ".out", out_dir=Path("lost"))
    outcomes = batch.run(tasks, "compress", jobs=2)
    assert [o.ok for o in outcomes] == [True, False] and "its worker failed" in outcomes[1].error
    assert sorted(p.name for p in Path("lost").iterdir()) == ["im0.out"]  # no partial file for the lost one
