"""dvc.yaml lists, for every stage, exactly the package modules its code imports.

A stage's code is its notebook (``python -m synthgen.notebook NAME``) or a module
(``python -m synthgen.X``).  Its modules are what that code imports from the package,
transitively, read from the source (imports inside functions included: they run when the
function does).  An edit to a module must rerun exactly the stages that import it, so
dvc.yaml's deps must hold every one of them, plus the notebook, and no other module.
(The root ``synthgen/__init__.py`` is empty by design and listed nowhere.)
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT


def _imported(source: str) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "synthgen":
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if _file(f"{node.module}.{a.name}") is not None}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "synthgen"}
    return out


def _file(module: str) -> Path | None:
    path = ROOT / Path(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_closure(source: str) -> set[str]:
    """Files of the package modules ``source`` imports, transitively (with the packages'
    ``__init__`` files they pass through, but the root's)."""
    seen, todo = set(), list(_imported(source))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]
        if (f := _file(module)) is not None:
            todo += _imported(f.read_text())
    return {str(_file(m).relative_to(ROOT)) for m in seen if m != "synthgen" and _file(m) is not None}


def notebook_source(name: str) -> str:
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def stage_code(cmd: str) -> tuple[str | None, str]:
    """(the notebook a stage runs or None, the source of its code)."""
    if m := re.match(r"python -m synthgen\.notebook (\S+)", cmd):
        return f"notebooks/{m.group(1)}.ipynb", notebook_source(m.group(1))
    if m := re.match(r"python -m (synthgen\.\S+)", cmd):
        return None, f"import {m.group(1)}"
    raise AssertionError(f"a stage runs something other than a notebook or a package module: {cmd}")


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_stage_lists_exactly_the_modules_it_imports(name):
    stage = STAGES[name]
    notebook, source = stage_code(stage["cmd"])
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
    listed = {d for d in deps if d.startswith("synthgen/")}
    expected = module_closure(source)
    if (entry := re.match(r"python -m (synthgen\.\S+)", stage["cmd"])) and not notebook:
        expected.add(str(_file(entry.group(1)).relative_to(ROOT)))
    assert listed == expected, f"{name}: missing {sorted(expected - listed)}, not imported {sorted(listed - expected)}"
    if notebook:
        assert notebook in deps, f"{name}: its notebook {notebook} is not a dep"


def test_the_closure_follows_imports_inside_functions_and_packages():
    closure = module_closure("from synthgen.search.compare import search_study")
    assert {"synthgen/search/__init__.py", "synthgen/search/compare.py", "synthgen/training.py",
            "synthgen/split_files.py"} <= closure  # the last two are imported inside search_study
    assert "synthgen/splits.py" not in closure


def test_dvc_yaml_follows_the_split_list_and_reads_the_seeds_from_params():
    from synthgen.split_files import SPLIT_NAMES

    for name in ("train", "evaluate"):
        matrix = STAGES[name]["matrix"]
        assert matrix["split"] == list(SPLIT_NAMES), name
        assert matrix["seed"] == "${seeds}", name  # the seeds of params.yaml, never a copy of them
    run = STAGES["scaling_run"]["matrix"]
    assert run["size"] == "${scaling.sizes}" and run["seed"] == "${scaling.seeds}"
    assert run["split"] == "${scaling.splits}"  # the splits of params.yaml
