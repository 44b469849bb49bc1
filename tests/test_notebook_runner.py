"""The stage runner (``python -m synthgen.notebook NAME``): it executes a notebook with
papermill, whose kernel talks to it over Unix sockets in a folder of the run's own."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

from synthgen import notebook
from tests.conftest import ROOT


def _repository(root, source: str) -> None:
    """A repository holding the project's params.yaml and one notebook, ``notebooks/probe.ipynb``."""
    (root / "notebooks").mkdir(parents=True)
    (root / "dvc.yaml").write_text("stages: {}\n")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    cells = [
        {"cell_type": "code", "id": "parameters", "metadata": {"tags": ["parameters"]}, "execution_count": None,
         "outputs": [], "source": "params_path = None\noverrides = {}"},
        {"cell_type": "code", "id": "probe", "metadata": {}, "execution_count": None, "outputs": [], "source": source},
    ]
    nb = {"cells": cells, "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    (root / "notebooks" / "probe.ipynb").write_text(json.dumps(nb))


def test_a_stage_kernel_runs_on_unix_sockets_that_leave_no_file(tmp_path, monkeypatch, capfd):
    # what the kernel was told: its connection file, named on its command line
    _repository(tmp_path, "import json, os, sys\n"
                          "print('cwd', os.getcwd())\n"
                          "print('transport', json.load(open(sys.argv[sys.argv.index('-f') + 1]))['transport'])")
    monkeypatch.setenv("SYNTHGEN_ROOT", str(tmp_path))
    before = set(os.listdir(tempfile.gettempdir()))
    notebook.run("probe", kernel="python3")
    out, err = capfd.readouterr()
    executed = json.loads((tmp_path / "reports" / "notebooks" / "probe.ipynb").read_text())
    printed = "".join("".join(o.get("text", [])) for o in executed["cells"][-1]["outputs"])
    assert "transport ipc" in printed
    assert f"cwd {tmp_path / 'notebooks'}" in printed
    assert "without encryption" not in err  # ipykernel's warning about TCP
    left = {name for name in set(os.listdir(tempfile.gettempdir())) - before if name.startswith("synthgen-kernel-")}
    assert not left, left  # the sockets' folder is gone with the run
    assert sorted(p.name for p in (tmp_path / "reports" / "notebooks").iterdir()) == ["probe.ipynb"]


@pytest.mark.parametrize("unix, transport", [(True, "ipc"), (False, "tcp")])
def test_the_kernel_manager_uses_unix_sockets_where_there_are_any(tmp_path, monkeypatch, unix, transport):
    monkeypatch.setattr(notebook, "_unix_sockets", lambda: unix)
    km = notebook._kernel_manager(tmp_path)(kernel_name="python3")
    assert km.transport == transport
    from jupyter_client.localinterfaces import localhost

    assert km.ip == (str(tmp_path / "kernel") if transport == "ipc" else localhost())
