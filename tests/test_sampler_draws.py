"""benchmarks/sampler_draws.py on the smoke profile: draw 0 is the splits stage's own draw,
another draw changes every density training set and nothing else, the workspace it copies
is left as it was, and the comparison runs on the smoke run's evaluations."""

import hashlib
import importlib.util

import numpy as np
import pytest

from tests.conftest import ROOT
from synthgen.split_files import DENSITY_SPLITS, read_split

pytestmark = pytest.mark.slow(seconds=10)


def _script():
    spec = importlib.util.spec_from_file_location("sampler_draws", ROOT / "benchmarks" / "sampler_draws.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digests(root):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted((root / "artifacts/splits").iterdir())}


def test_a_redraw_changes_the_training_sets_only(_smoke_splits, tmp_path, capsys):
    script, before = _script(), _digests(_smoke_splits)
    script.cmd_draw(_smoke_splits, 0, tmp_path / "draw0")
    assert "draw 0 is the splits stage's draw" in capsys.readouterr().out
    assert _digests(tmp_path / "draw0") == before  # the same bytes: the stage's own draw
    script.cmd_draw(_smoke_splits, 1, tmp_path / "draw1")
    assert _digests(_smoke_splits) == before  # written beside the hard links, never through them
    for split in DENSITY_SPLITS:
        train0, test0, facts0 = read_split(_smoke_splits / "artifacts/splits" / f"{split}.parquet")
        train1, test1, facts1 = read_split(tmp_path / "draw1/artifacts/splits" / f"{split}.parquet")
        assert test1.equals(test0) and facts1 == facts0
        assert len(train1) == len(train0) and not np.array_equal(train1, train0)
        assert not np.intersect1d(train1, test1.program_id).size
    for split in ("iid", "support_syntax", "support_semantics"):  # other splits: untouched
        assert _digests(tmp_path / "draw1")[f"{split}.parquet"] == before[f"{split}.parquet"]
    assert not (tmp_path / "draw1/artifacts/models").exists()
    with pytest.raises(SystemExit, match="draw 0 of density_random is not the splits stage's"):
        script.cmd_draw(tmp_path / "draw1", 0, tmp_path / "again")  # its files are draw 1's
    with pytest.raises(SystemExit, match="exists"):
        script.cmd_draw(_smoke_splits, 1, tmp_path / "draw1")


def test_the_comparison_reads_the_pipeline_evaluations(smoke_run, capsys):
    _script().cmd_compare([smoke_run])
    out = capsys.readouterr().out
    assert "greedy pass@1 per draw" in out and "each sampler minus random" in out
    for sampler in ("diverse_syntax", "diverse_semantics", "diverse_both"):
        assert out.count(f"{sampler} - random") == 4  # raw and matched, in both designs
