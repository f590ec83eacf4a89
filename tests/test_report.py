"""Tests of diffcode.report: baseline sizes and provenance-headed tables."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from diffcode import report


@pytest.fixture
def small():
    """A small smooth RGB image, so the baselines run in milliseconds."""
    y, x = np.mgrid[0:24, 0:32]
    return np.stack([x * 7, y * 9, (x + y) * 3], axis=-1).astype(np.uint8)


def test_png_size(small):
    assert report.png_size(small) > 0


@pytest.mark.parametrize("codec", [report.webp_size, report.jxl_size])
def test_optional_codecs(codec, small):
    size = codec(small)
    assert size is None or size > 0


def test_bpsp():
    assert report.bpsp(3, 1, 1) == 8.0
    assert report.bpsp(768 * 512 * 3, 512, 768) == 8.0
    with pytest.raises(ValueError):
        report.bpsp(10, 0, 5)


def test_write_table(tmp_path):
    rows = [{"image": "kodim01", "bpsp": 3.14159, "size_bytes": 1000, "extra": 1},
            {"image": "a|b", "bpsp": None, "size_bytes": 2}]
    columns = ["image", "bpsp", "size_bytes"]
    report.write_table(rows, tmp_path / "table", "python run.py --fast", columns)
    commit = report.git_commit()
    md = (tmp_path / "table.md").read_text()
    assert "python run.py --fast" in md and commit in md
    assert "| kodim01 | 3.1416 | 1000 |" in md and "a\\|b" in md
    lines = (tmp_path / "table.csv").read_text().splitlines()
    assert lines[0] == "# command: python run.py --fast"
    assert f"# commit: {commit}" in lines
    table = list(csv.reader(line for line in lines if not line.startswith("#")))
    assert table == [columns, ["kodim01", "3.14159", "1000"], ["a|b", "", "2"]]


def test_provenance_has_machine_and_date():
    info = report.provenance("cmd")
    assert set(info) == {"command", "commit", "date", "machine"}
    assert "CPUs" in info["machine"] and "torch" in info["machine"]


def test_modules_do_not_import_torch():
    code = ("import sys, diffcode.image, diffcode.kodak, diffcode.report; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dirty_means_code_differs(tmp_path):
    """git_commit says -dirty for a changed tracked file or a new .py file, not for new results."""
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "image.py").write_text("x = 1\n")
    git("add", "image.py")
    git("commit", "-q", "-m", "first")
    assert not report.git_commit(tmp_path).endswith("-dirty")
    (tmp_path / "table.md").write_text("| a |\n")
    assert not report.git_commit(tmp_path).endswith("-dirty")
    (tmp_path / "new_module.py").write_text("")
    assert report.git_commit(tmp_path).endswith("-dirty")
    (tmp_path / "new_module.py").unlink()
    (tmp_path / "image.py").write_text("x = 2\n")
    assert report.git_commit(tmp_path).endswith("-dirty")


def test_cpu_model_names_the_cpu_and_its_vector_extensions(monkeypatch, tmp_path):
    """Result tables name the CPU: timings differ several-fold with and without bfloat16."""
    from pathlib import Path

    from diffcode import report

    text = {"x86": "model name\t: Some CPU 9000\nflags\t\t: fpu avx2 avx512f avx512_bf16\n",
            "arm": "processor\t: 0\nFeatures\t: fp asimd\n"}
    real_read = Path.read_text
    for kind, expected in (("x86", "Some CPU 9000 (avx2 avx512f avx512_bf16)"), ("arm", "unknown CPU (no AVX2)")):
        monkeypatch.setattr(Path, "read_text",
                            lambda self, *a, k=kind, **kw: text[k] if str(self) == "/proc/cpuinfo" else real_read(self, *a, **kw))
        assert report.cpu_model() == expected
        assert report.machine_description().startswith(expected)
