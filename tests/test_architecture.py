"""The package's shape: no import circles, exact code apart from float code, families only via the protocol."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from diffcode import families
from diffcode.storage import container

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "diffcode"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, at any depth (function-level imports count too)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:  # `from pkg import submodule` imports the submodule
                    edges.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [node, nxt] if nxt in stack else [node, nxt]
            if nxt not in state:
                found = visit(nxt, stack + [node])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [])
            if found:
                return found
    return None


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert {"diffcode.codec", "diffcode.families.weights.exact", "diffcode.cauchy"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


_DECODE_ONLY = r"""
import sys
from pathlib import Path
import torch
from diffcode import codec
for path in sorted(Path(sys.argv[1]).glob("*.dfc")):
    codec.load(path.read_bytes())
ours = [m for m in list(sys.modules) if m == "diffcode" or m.startswith("diffcode.")]
models = [f"{m}.{k}" for m in ours for k, v in vars(sys.modules[m]).items()
          if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == m]
print("MODULES", " ".join(sorted(ours)))
print("NN", " ".join(models))
"""


def test_decoding_loads_no_fitting_code():
    """Decoding a file of every family imports no fit module and no module that defines a torch model."""
    out = subprocess.run([sys.executable, "-c", _DECODE_ONLY, str(ROOT / "tests" / "golden")], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    loaded = re.search(r"^MODULES (.*)$", out, re.M).group(1).split()
    assert {f"diffcode.families.{name.replace('-', '_')}" for name in families.names()} <= set(loaded)
    assert not [m for m in loaded if m.rpartition(".")[2] in ("fit", "model", "train", "encodings")], loaded
    assert re.search(r"^NN ?(.*)$", out, re.M).group(1) == ""


def test_only_families_name_families():
    """Outside diffcode/families, no module compares against a family's name (the protocol is missing
    something if one has to)."""
    names = "|".join(re.escape(n) for n in families.names())
    pattern = re.compile(rf"""(==|!=|\bin\b)\s*\(?["']({names})["']|["']({names})["']\s*(==|!=)""")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in PACKAGE.rglob("*.py") if "families" not in p.parts
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders


def test_every_registered_family_has_a_header_code():
    codes = {name: code for code, name in container.VARIANTS.items()}
    for name in families.names():
        assert name in codes and families.get(name).name == name


def test_experiments_import_the_package_never_tests():
    offenders = [p.name for p in (ROOT / "experiments").glob("*.py")
                 if re.search(r"^\s*(from|import)\s+tests\b", p.read_text(), re.M)]
    assert not offenders


def test_the_generic_layers_import_without_torch():
    """A family whose decode is numpy only (the pyramid family's plan) decodes without torch: the
    codec, API, fit files and registry do not import it themselves."""
    code = "import sys, diffcode.codec, diffcode.api, diffcode.fitfile, diffcode.families; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_decoding_any_family_imports_no_torch():
    """Every family's decode is numpy and numba only: importing torch costs 1.3-2 s, most of a
    per-pixel or weights decode (issue 13). A file of every family, decoded in a fresh process."""
    code = ("import sys; from pathlib import Path; from diffcode import codec\n"
            "for path in sorted(Path(sys.argv[1]).glob('*.dfc')): codec.load(path.read_bytes())\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "tests" / "golden")], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
