"""params.yaml: every bad value stops with one line naming the key and what is allowed."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from synthgen.params import ParamsError, load_params, validate_params
from synthgen.profiles import available_profiles, profile_text, use_profile
from tests.conftest import ROOT

DEFAULT = yaml.safe_load((ROOT / "profiles" / "default.yaml").read_text())


def with_change(path: str, value, delete: bool = False) -> dict:
    raw = copy.deepcopy(DEFAULT)
    node = raw
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[part]
    if delete:
        del node[leaf]
    else:
        node[leaf] = value
    return raw


BAD = [
    # (dotted key, bad value, substring the one-line message must contain)
    ("grammar.max_size", 0, "grammar.max_size = 0: must be an integer from 1 to 9"),
    ("grammar.max_size", 10, "grammar.max_size = 10: must be an integer from 1 to 9"),
    ("grammar.max_size", "7", "grammar.max_size = '7': Input should be a valid integer"),
    ("grammar.max_size", 7.5, "grammar.max_size = 7.5"),
    ("grammar.max_size", True, "grammar.max_size = True"),
    ("grammar.unary", ["neg", "sqrt"], "unknown operator 'sqrt'; the DSL has neg, abs"),
    ("grammar.binary", ["add", "pow"], "unknown operator 'pow'; the DSL has add, sub, mul, div, mod, min, max"),
    ("grammar.binary", ["add", "add"], "operators must be distinct"),
    ("grammar.binary", "add", "grammar.binary = 'add': Input should be a valid list"),
    ("grammar.variables", [], "must list 1 to 3 variable names"),
    ("grammar.variables", ["x", "X"], "'X' is not allowed"),
    ("grammar.variables", ["x", "add"], "'add' is not allowed"),
    ("grammar.variables", ["x", "x"], "variable names must be distinct"),
    ("grammar.constants", [1, 1], "constants must be distinct"),
    ("grammar.constants", [1, "two"], "grammar.constants.1 = 'two'"),
    ("grammar.grid", {"low": 4, "high": -4}, "empty or inverted grid: low (4) must be <= high (-4)"),
    ("grammar.grid", {"low": -4}, "grammar.grid.high: missing key"),
    ("grammar.grid", {"low": -40, "high": 40}, "grid has 6561 points"),
    ("grammar.value_bound", 0, "grammar.value_bound = 0: must be an integer from 1 to 2147483647"),
    ("grammar.value_bound", 2**40, "must be an integer from 1 to 2147483647"),
    ("grammar.value_bound", 3, "value_bound (3) must cover every grid value and constant (4)"),
    ("grammar.colour", "red", "grammar.colour: unknown key; allowed keys here: variables, constants, unary, binary"),
    ("seed", -1, "seed = -1: must be an integer from 0 to 2**32 - 1"),
    ("seed", "zero", "seed = 'zero'"),
    ("enumeration.compression", "lz4", "enumeration.compression = 'lz4': must be one of zstd, snappy, gzip, none"),
    ("enumeration.row_group_size", 10, "must be an integer >= 1024"),
    ("grammar", None, "grammar = None"),
    ("splits.guard", "some", "splits.guard = 'some': must be held_out (the support splits) or all (every split)"),
    ("splits.pool", "classes", "splits.pool = 'classes': must be representatives"),
    ("splits.min_size", 8, "splits: min_size (8) exceeds grammar.max_size (7)"),
    ("grammar.max_size", 5, "splits: the grammar has 17,825 programs of size min_size (2) to max_size (5), "
                            "fewer than train_size + test_size (21,000)"),
    ("scaling.sizes", {"xs": DEFAULT["scaling"]["sizes"]["xs"]}, "must name at least 2 model sizes"),
    ("scaling.sizes", {**DEFAULT["scaling"]["sizes"], "XL": DEFAULT["scaling"]["sizes"]["l"]}, "size name 'XL' must be"),
    ("scaling.sizes", {**DEFAULT["scaling"]["sizes"], "xl": {"encoder_layers": 1, "decoder_layers": 1, "width": 30, "heads": 4}},
     "width (30) must be divisible by heads (4)"),
    ("scaling.sizes", {**DEFAULT["scaling"]["sizes"], "xl": {"encoder_layers": 0, "decoder_layers": 1, "width": 32, "heads": 4}},
     "scaling.sizes.xl.encoder_layers = 0: must be an integer >= 1"),
    ("scaling.tasks", 0, "scaling.tasks = 0: must be an integer >= 1"),
    ("scaling.splits", ["support_syntax"], "scaling.splits = ['support_syntax']: must be distinct split names including iid, from iid, density_random"),
    ("scaling.splits", ["iid", "iid"], "must be distinct split names including iid"),
    ("scaling.splits", ["iid", "ood"], "must be distinct split names including iid"),
    ("scaling.budgets", [0.5, 0.25, 1.0], "must be strictly increasing shares in (0, 1] ending with 1"),
    ("scaling.budgets", [0.25, 0.5], "must be strictly increasing shares in (0, 1] ending with 1"),
    ("scaling.budgets", [0.0, 1.0], "must be strictly increasing shares in (0, 1] ending with 1"),
    ("scaling.budgets", [0.0001, 1.0], "fall on steps [0, 5000]; each must be a distinct step >= 1"),
    ("search.tasks", 0, "must be an integer >= 1"),
    ("search.samples", [4, 2], "must be a non-empty, strictly increasing list of integers >= 1"),
    ("search.expansions", [], "must be a non-empty, strictly increasing list of integers >= 1"),
    ("search.programs", [0, 10], "must be a non-empty, strictly increasing list of integers >= 1"),
    ("measurement.floor", 1.5, "measurement.floor = 1.5: must be a number in [0, 1]"),
    ("measurement.floor", -0.1, "measurement.floor = -0.1: must be a number in [0, 1]"),
    ("measurement.floor", "high", "measurement.floor = 'high'"),
    ("training.bf16", "yes", "training.bf16 = 'yes': must be true, false or auto"),
    ("training.bf16", 1, "training.bf16 = 1: must be true, false or auto"),
]


@pytest.mark.parametrize("key, value, message", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_value_gives_one_line_naming_the_key(key, value, message):
    with pytest.raises(ParamsError) as err:
        validate_params(with_change(key, value))
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("params.yaml: ")
    assert message in text


def test_missing_section_and_unknown_section():
    with pytest.raises(ParamsError, match=r"^params.yaml: enumeration: missing key$"):
        validate_params(with_change("enumeration", None, delete=True))
    raw = copy.deepcopy(DEFAULT)
    raw["grammer"] = {}
    with pytest.raises(ParamsError, match="grammer: unknown key; allowed keys here: seed, seeds, grammar"):
        validate_params(raw)


def test_not_a_mapping_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="must be a mapping"):
        validate_params([1, 2])
    bad = tmp_path / "params.yaml"
    bad.write_text("grammar: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML at line \d"):
        load_params(bad)
    with pytest.raises(ParamsError, match="cannot read params file"):
        load_params(tmp_path / "missing.yaml")


def test_overrides_are_validated_too(tmp_path):
    p = load_params(ROOT / "profiles" / "default.yaml", {"grammar.max_size": 6})
    assert p.grammar.max_size == 6
    with pytest.raises(ParamsError, match="grammar.max_size = -1"):
        load_params(ROOT / "profiles" / "default.yaml", {"grammar.max_size": -1})
    with pytest.raises(ParamsError, match="unknown key 'maxsize'"):
        load_params(ROOT / "profiles" / "default.yaml", {"grammar.maxsize": 5})


def test_every_profile_is_valid_and_default_is_byte_identical():
    assert {"smoke", "default", "paper"} <= set(available_profiles(ROOT))
    for name in available_profiles(ROOT):
        validate_params(yaml.safe_load(profile_text(ROOT, name)))
    assert profile_text(ROOT, "default") == (ROOT / "profiles" / "default.yaml").read_text()
    smoke = yaml.safe_load(profile_text(ROOT, "smoke"))
    assert smoke["grammar"]["max_size"] < DEFAULT["grammar"]["max_size"]


def test_switching_profile_keeps_an_edited_params_file(tmp_path):
    (tmp_path / "profiles").mkdir()
    for f in (ROOT / "profiles").glob("*.yaml"):
        (tmp_path / "profiles" / f.name).write_text(f.read_text())
    edited = profile_text(ROOT, "default").replace("seed: 0", "seed: 7")
    (tmp_path / "params.yaml").write_text(edited)
    msg = use_profile(tmp_path, "smoke")
    assert "params.yaml.bak" in msg
    assert (tmp_path / "params.yaml.bak").read_text() == edited
    assert (tmp_path / "params.yaml").read_text() == profile_text(ROOT, "smoke")
    # switching between unedited profiles needs no backup
    (tmp_path / "params.yaml.bak").unlink()
    assert "bak" not in use_profile(tmp_path, "default")
    with pytest.raises(ParamsError, match="profile 'huge' does not exist; choose one of default, paper, smoke"):
        use_profile(tmp_path, "huge")


def test_stage_runner_stops_before_any_work(tmp_path):
    """A bad params.yaml stops a stage with one line on stderr and exit status 2."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change("grammar.max_size", 0)))
    proc = subprocess.run(
        [sys.executable, "-m", "synthgen.notebook", "02_enumeration"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "synthgen: params.yaml: grammar.max_size = 0: must be an integer from 1 to 9"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dvc.yaml", "params.yaml"]


def test_the_split_names_params_checks_are_the_pipelines():
    from synthgen import params, split_files

    assert params.SPLIT_NAMES == split_files.SPLIT_NAMES
