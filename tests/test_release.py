"""The released benchmark (data/) and the scorer for external predictions."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthgen.release import blas_kernels, build_release, check_release, dvc_dir_md5, manifest_problems
from synthgen.score import PredictionFileError, main as score_main, score_predictions
from synthgen import splits as splitting
from synthgen.universe import write_universe
from tests.conftest import smoke_params


@pytest.fixture(scope="module")
def params():
    return smoke_params()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, universe, spaces_for, params):
    """A universe and the seven splits, as the pipeline writes them (smoke sizes)."""
    root = tmp_path_factory.mktemp("artifacts")
    write_universe(universe, root / "universe")
    inputs = spaces_for(universe)
    for s in splitting.make_splits(inputs, params.splits, seed=params.seed):
        splitting.write_split(s, root / "splits")
        splitting.write_ood(s, splitting.ood_frame(s, inputs), root / "ood")
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory, artifacts, params):
    out = tmp_path_factory.mktemp("release") / "data"
    build_release(artifacts, out, params, log=lambda *_: None)
    return out


def test_manifest_matches_the_data(release, universe):
    assert manifest_problems(release) == []
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["programs"] == len(universe) == 17_830
    assert manifest["files"]["universe/programs.parquet"]["rows"] == len(universe)
    for name, split in manifest["splits"].items():
        for part in ("train", "test"):
            rows = pq.ParquetFile(release / "splits" / name / f"{part}.parquet").metadata.num_rows
            assert rows == split[part] == manifest["files"][f"splits/{name}/{part}.parquet"]["rows"]
    assert len(manifest["splits"]) == 7
    assert "support_syntax" in (release / "DATASHEET.md").read_text()


def test_manifest_notices_a_changed_file(release, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(release, copy)
    target = copy / "splits" / "iid" / "test.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside a page
    target.write_bytes(bytes(data))
    problems = manifest_problems(copy)
    assert any("splits/iid/test.parquet" in p and "sha256" in p for p in problems)


def test_same_inputs_same_bytes(release, artifacts, params, tmp_path):
    again = tmp_path / "data"
    build_release(artifacts, again, params, log=lambda *_: None)
    assert dvc_dir_md5(again) == dvc_dir_md5(release)


def test_test_tasks_are_the_targets_outputs_at_their_inputs(release, universe):
    test = pq.read_table(release / "splits" / "iid" / "test.parquet").to_pandas()
    g = universe.grammar
    for row in test.head(20).itertuples():
        program = universe.program(int(row.program_id))
        assert program.prefix() == row.prefix and program.infix() == row.infix
        inputs = np.stack(row.inputs)
        assert inputs.shape == (10, 2)
        assert np.array_equal(g.evaluate(program, inputs), np.asarray(row.outputs))


@pytest.mark.slow(seconds=3)
def test_our_directory_hash_is_dvcs(release, tmp_path):
    """dvc_dir_md5 must give what `dvc add` records, or the release check means nothing."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(release, repo / "data")
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*dvc, "add", "-q", "data"], cwd=repo, check=True, capture_output=True)
    from synthgen.release import recorded_md5

    assert recorded_md5(repo / "data.dvc") == dvc_dir_md5(repo / "data")


def test_release_check_passes_on_a_reproduction_and_fails_on_a_difference(release, artifacts, params, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "artifacts").symlink_to(artifacts)
    shutil.copytree(release, root / "data")
    (root / "data.dvc").write_text(f"outs:\n- md5: {dvc_dir_md5(release)}\n  path: data\n")
    assert check_release(root, params, log=lambda *_: None) == []
    (root / "data.dvc").write_text("outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: data\n")
    (problem,) = check_release(root, params, log=lambda *_: None)  # one difference, one problem
    assert problem.startswith("data.dvc records 0123456789abcdef0123456789abcdef.dir, a fresh build hashes to ")
    # it names the BLAS kernels loaded here: the bytes of the spaces depend on them
    assert "BLAS kernels and thread count" in problem and blas_kernels() in problem and "no BLAS loaded" not in problem
    assert " thread" in blas_kernels()


# --- scoring ------------------------------------------------------------------------


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _test(release, split="support_syntax"):
    return pq.read_table(release / "splits" / split / "test.parquet").to_pandas()


@pytest.mark.parametrize("notation", ["prefix", "infix"])
def test_reference_programs_score_one(release, tmp_path, notation):
    test = _test(release)
    path = _write(tmp_path / "ref.tsv", [f"{r.program_id}\t{getattr(r, notation)}" for r in test.itertuples()])
    for n in (notation, "auto"):
        score = score_predictions(release, "support_syntax", path, n, n_boot=100)
        assert score.summary["pass@1"] == 1.0 and score.summary["valid"] == 1.0 and score.summary["consistent"] == 1.0
    assert score.map_count.to_numpy().sum() == len(test)


def test_equivalent_programs_pass_and_wrong_ones_do_not(release, tmp_path, universe):
    test = _test(release)
    lines = [f"{r.program_id}\tadd {r.prefix} 1" for r in test.itertuples()]  # f + 1 is never f
    wrong = score_predictions(release, "support_syntax", _write(tmp_path / "wrong.tsv", lines), n_boot=100)
    assert wrong.summary["pass@1"] == 0.0 and wrong.summary["valid"] == 1.0
    same = [f"{r.program_id}\tmax {r.prefix} {r.prefix}" for r in test.itertuples()]  # max(f, f) = f: another program, same function
    assert score_predictions(release, "support_syntax", _write(tmp_path / "same.tsv", same), n_boot=100).summary["pass@1"] == 1.0
    garbage = [f"{r.program_id}\tthis is not a program" for r in test.itertuples()]
    s = score_predictions(release, "support_syntax", _write(tmp_path / "garbage.tsv", garbage), n_boot=100)
    assert s.summary["pass@1"] == 0.0 and s.summary["valid"] == 0.0


def test_malformed_files_name_the_line(release, tmp_path):
    test = _test(release)
    good = [f"{r.program_id}\t{r.prefix}" for r in test.itertuples()]
    cases = {
        "no_tab": (good[:2] + [good[2].replace("\t", " ")] + good[3:], ":3: expected '<program_id><TAB><program>'"),
        "bad_id": (["# a comment", ""] + [good[0].replace(str(test.program_id[0]), "abc", 1)] + good[1:], ":3: program_id 'abc'"),
        "unknown": (good + ["99999999\tx"], f":{len(good) + 1}: program_id 99999999 is not a test task"),
        "twice": (good + [good[0]], f":{len(good) + 1}: program_id {test.program_id[0]} is predicted twice (first on line 1)"),
        "missing": (good[1:], f"1 of {len(good)} test tasks have no prediction, e.g. program_id {test.program_id[0]}"),
    }
    for name, (lines, message) in cases.items():
        with pytest.raises(PredictionFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
            score_predictions(release, "support_syntax", _write(tmp_path / f"{name}.tsv", lines))


def test_command_line(release, tmp_path, capsys):
    test = _test(release, "iid")
    path = _write(tmp_path / "p.tsv", [f"{r.program_id}\t{r.infix}" for r in test.itertuples()])
    assert score_main(["iid", str(path), "--data", str(release), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "pass@1      1.0000" in out and "generalization map" in out
    assert json.loads((tmp_path / "s.json").read_text())["pass@1"] == 1.0
    bad = _write(tmp_path / "bad.tsv", ["1 x"])
    assert score_main(["iid", str(bad), "--data", str(release)]) == 2
    assert "bad.tsv:1:" in capsys.readouterr().err
    assert score_main(["nonsense", str(path), "--data", str(release)]) == 2
    assert "no such split" in capsys.readouterr().err
