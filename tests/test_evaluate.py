"""The evaluation: one bit-exact row per image, a table with the mean, resumable from its cache."""

import csv

import numpy as np
import pytest

from diffcode import evaluate as ev
from diffcode.families.per_pixel import fit as fit_module
from diffcode.image import write_png
from tests.conftest import small_images


@pytest.fixture()
def setup(tmp_path, checkpoint):
    ckpt_path = tmp_path / "decoder.npz"
    checkpoint.save(ckpt_path)
    images = []
    for name in ("noise", "odd 37x23"):
        path = tmp_path / (name.replace(" ", "_") + ".png")
        write_png(path, small_images()[name])
        images.append(str(path))
    cache = ev.cache_dir(tmp_path / "work", "per-pixel", checkpoint.hash, 3, 0, 0, "dither")
    jobs = ev.image_jobs(images, variant="per-pixel", storage="dither", fit_storage="dither", steps=3, seed=0,
                         kodak_dir=None, checkpoint=str(ckpt_path), cache=str(cache), threads=1, figures=False)
    return tmp_path, jobs


def test_rows_are_bit_exact_and_the_table_has_a_mean(setup):
    tmp_path, jobs = setup
    rows = ev.evaluate(jobs)
    assert [r["image"] for r in rows] == ["noise", "odd_37x23"]
    for r in rows:
        assert r["bit_exact"] is True
        assert r["file_bytes"] > 0 and r["theoretical_bytes"] > 0 and r["png_bytes"] > 0
        assert abs(r["bpsp"] - 8 * r["file_bytes"] / (3 * r["height"] * r["width"])) < 1e-9
    ev.write_results(rows, tmp_path / "out" / "table", "test command", jobs, figures=False)
    text = (tmp_path / "out" / "table.csv").read_text().splitlines()
    assert text[0] == "# command: test command"
    table = list(csv.DictReader(line for line in text if not line.startswith("#")))
    assert list(table[0]) == ev.columns(rows)
    assert list(table[0])[4:9] == ["encodings_theoretical_bytes", "error_table_theoretical_bytes", "theoretical_bytes",
                                   "encodings_bytes", "error_table_bytes"]  # a column pair per section kind
    assert [r["image"] for r in table] == ["noise", "odd_37x23", "mean"]
    mean_bytes = np.mean([r["file_bytes"] for r in rows])
    assert float(table[2]["file_bytes"]) == pytest.approx(mean_bytes)
    assert "| mean |" in (tmp_path / "out" / "table.md").read_text()


def test_finished_images_are_reused_and_force_reuses_only_the_fits(setup, monkeypatch):
    _, jobs = setup
    first = ev.evaluate(jobs)
    calls = []
    real_fit = fit_module.fit_image

    def counting_fit(*args, **kwargs):
        calls.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(fit_module, "fit_image", counting_fit)
    seen = []
    again = ev.evaluate(jobs, on_row=lambda row, cached: seen.append(cached))
    assert seen == [True, True] and again == first and not calls
    forced = ev.evaluate(jobs[:1], force=True, on_row=lambda row, cached: seen.append(cached))
    assert seen[-1] is False and not calls  # stored and decoded again from the cached fit
    assert forced[0]["file_bytes"] == first[0]["file_bytes"]
    ev.evaluate(jobs[:1], refit=True)
    assert len(calls) == 1


def test_a_changed_image_is_not_served_from_the_cache(setup, tmp_path):
    _, jobs = setup
    ev.evaluate(jobs[:1])
    write_png(jobs[0].source, small_images()["flat"], overwrite=True)
    row = ev.evaluate(jobs[:1], force=True)[0]
    assert (row["height"], row["width"]) == small_images()["flat"].shape[:2] and row["bit_exact"]


def test_inputs_name_their_rows_and_reject_duplicates(tmp_path):
    jobs = ev.image_jobs(["test"], crop=64, variant="per-pixel", storage="dither", fit_storage="dither",
                         steps=1, seed=0, kodak_dir=None, checkpoint=None, cache=str(tmp_path), threads=1)
    assert [j.name for j in jobs] == [f"kodim{i}[64]" for i in range(17, 25)]
    with pytest.raises(ValueError):
        ev.image_jobs(["a/x.png", "b/x.png"], variant="per-pixel", storage="dither", fit_storage="dither",
                      steps=1, seed=0, kodak_dir=None, checkpoint=None, cache=str(tmp_path), threads=1)


def test_weights_variant_rows(tmp_path):
    """The weights variant (tiny preset) evaluates like the per-pixel one: bit-exact rows with side info."""
    from diffcode.families.weights import spec as wv

    path = tmp_path / "noise.png"
    write_png(path, small_images()["noise"])
    cache = ev.cache_dir(tmp_path / "work", "weights", wv.MLPCheckpoint.load().hash, 6, 0, 0, "dither", "tiny")
    assert "-tiny-" in cache.name
    jobs = ev.image_jobs([str(path)], variant="weights", storage="dither", fit_storage="dither", steps=6, seed=0,
                         kodak_dir=None, checkpoint=None, cache=str(cache), threads=1, figures=True, preset="tiny")
    row = ev.evaluate(jobs)[0]
    assert row["bit_exact"] is True and row["fit_steps"] == 6
    assert row["side_info_bytes"] > 0 and 0 < row["side_info_theoretical_bytes"] < row["theoretical_bytes"]
    assert ev.evaluate(jobs, force=True)[0]["file_bytes"] == row["file_bytes"]  # same fit, same file
