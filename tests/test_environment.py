"""environment.yml (conda) and pyproject.toml (pip) list the same dependencies, and
requirements.lock pins a version of each that pyproject.toml admits."""

from __future__ import annotations

import re
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

import yaml

from tests.conftest import ROOT, needs_smoke_run

CONDA_TO_PIP = {"pytorch": "torch"}


def _split(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*(#.*)?$", spec)
    assert m, spec
    name = m.group(1).lower().replace("_", "-")
    return CONDA_TO_PIP.get(name, name), m.group(2).replace(" ", "")


def test_conda_and_pip_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_specs = dict(_split(s) for s in project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_specs: dict[str, str] = {}
    for dep in env["dependencies"]:
        for spec in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, version = _split(spec)
            if name not in ("python", "pip"):
                conda_specs[name] = version
    assert set(conda_specs) == set(pip_specs)
    for name, version in conda_specs.items():
        if name == "torch":
            # conda pins the exact CPU build the bootstrap installs; pyproject's range must admit it
            assert version == "==2.13.0" and pip_specs[name] == ">=2.4,<2.15"
        else:
            assert version == pip_specs[name], name


def test_bootstrap_pins_torch():
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile


def test_bootstrap_pins_its_installer():
    """The bootstrap and `make lock` install one release of uv, the one this .venv holds."""
    import importlib.metadata

    makefile = (ROOT / "Makefile").read_text()
    pin = re.search(r"^UV := uv==(\S+)$", makefile, re.M)
    assert pin and makefile.count('pip install --quiet --disable-pip-version-check "$(UV)"') == 2
    try:
        installed = importlib.metadata.version("uv")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("no uv here: not the Makefile's .venv")
    assert installed == pin.group(1)


def test_dvc_parses_yaml_with_libyaml():
    """DVC reads params.yaml (and dvc.yaml, dvc.lock) with ruamel's safe loader once per stage
    it checks; ruamel.yaml 0.19 installs no C parser of its own, and the pure-Python one
    took a third of `dvc status` in the smoke repository (docs/performance.md)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.main import CParser

    assert CParser is not None and YAML(typ="safe").Parser is CParser


def _pins() -> dict:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==" and canonicalize_name(req.name) not in pins, line
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def test_the_lock_pins_a_version_of_every_dependency_within_its_range():
    """requirements.lock (`make lock`) holds the exact versions the bootstrap installs: one pin
    per package, for every dependency of pyproject.toml inside the range it asks for, and no
    torch (the Makefile's TORCH pins it). An edit of pyproject.toml's list without a new lock
    fails here."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = _pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch" not in pins
    for text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name == "torch":
            continue
        assert name in pins, f"{name}: not in requirements.lock (run `make lock`)"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {req.specifier} (run `make lock`)"


def test_the_bootstrap_installed_the_locked_versions():
    """In the Makefile's .venv, every package of requirements.lock that is installed has the
    locked version (a bootstrap that stopped passing the lock would fail here). Other
    environments (conda, a virtual environment of one's own) are not checked."""
    import importlib.metadata
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip("not the Makefile's .venv")
    import setuptools  # noqa: F401  as after torch's inductor has built a kernel: the case below, every time
    # only the venv's own site-packages: an imported setuptools appends its _vendor folder,
    # with older packaging and platformdirs, to sys.path (whether it ran first depends on the order)
    site = sorted({sysconfig.get_paths()[key] for key in ("purelib", "platlib")})
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version)
                 for d in importlib.metadata.distributions(path=site)}
    pins = _pins()
    wrong = {name: f"{installed[name]} (locked {pin})" for name, pin in pins.items()
             if name in installed and installed[name] != pin}
    assert not wrong, wrong
    assert len(set(pins) & set(installed)) > 100


def test_make_bench_runs_the_speed_benchmarks_and_nothing_that_needs_arguments():
    """`make bench` runs a list of scripts, each of which takes no argument it requires; the
    checks and studies beside them (a workspace argument, a subcommand, hours) stay out."""
    makefile = (ROOT / "Makefile").read_text()
    listed = re.search(r"^BENCHES := (.+)$", makefile, re.M).group(1).split()
    assert listed and "$(BENCHES)" in makefile
    for name in listed:
        script = ROOT / "benchmarks" / f"{name}.py"
        assert script.is_file(), name
        source = script.read_text()
        assert not re.search(r"add_argument\(\"[a-z]", source), f"{name} requires a positional argument"
        assert "add_subparsers" not in source, f"{name} requires a subcommand"
    for name in ("cross_cpu", "sampler_draws", "blas_pin", "seed_spread", "repro_time", "test_suite"):
        assert name not in listed


def test_make_test_fast_leaves_out_every_test_of_the_smoke_run(request):
    """`make test-fast` selects the tests not marked slow; every test that needs the smoke
    run (any fixture built on its data stages) is slow, whether its module marks it or not
    (tests/conftest.py), so the fast selection never builds the pipeline. Read off the tests
    this session collected (all of them under `make test`)."""
    recipe = re.search(r"^test-fast:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert recipe and '-m "not slow"' in recipe.group(1)
    items = request.session.items
    smoke = [item for item in items if needs_smoke_run(item)]
    unmarked = [item.nodeid for item in smoke if not item.get_closest_marker("slow")]
    assert not unmarked, unmarked
    pipeline = [item for item in items if item.nodeid.startswith("tests/test_pipeline.py::")]
    assert not pipeline or smoke  # the pipeline's tests are found as tests of the smoke run
