"""The scorer on files a model or a user might hand it: deep, wide and malformed.

Whatever the file holds, :func:`score_predictions` returns a score or raises its
documented :class:`PredictionFileError`, and that error names the first malformed line.
The released data here is a toy one written directly (a small universe and one split of
a few test tasks), so these tests depend on the scorer's reading of ``data/`` only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Program
from synthgen.score import PredictionFileError, score_predictions
from synthgen.universe import write_universe
from tests.conftest import make_grammar

SPLIT = "toy"
K = 4
DEEP = 10_000


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(data folder, universe, test program ids): one split of six test tasks."""
    universe = enumerate_universe(make_grammar(max_size=3))
    data = tmp_path_factory.mktemp("toy") / "data"
    write_universe(universe, data / "universe")
    rng = np.random.default_rng(0)
    valid = np.flatnonzero(universe.semantic_class >= 0)
    ids = np.sort(rng.choice(valid, 6, replace=False)).astype(np.int64)
    g = universe.grammar
    points = np.stack([rng.choice(g.n_points, K, replace=False) for _ in ids])
    outputs = universe.class_outputs[universe.semantic_class[ids][:, None], points]
    inputs = g.grid[points]  # (tasks, K, variables)
    table = pa.table({
        "program_id": pa.array(ids),
        "inputs": pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(inputs.reshape(-1)), inputs.shape[2]), K),
        "outputs": pa.FixedSizeListArray.from_arrays(pa.array(outputs.reshape(-1)), K),
        "ood_pqgram": pa.array(rng.random(len(ids))),
        "ood_semantics": pa.array(rng.random(len(ids))),
    })
    (data / "splits" / SPLIT).mkdir(parents=True)
    pq.write_table(table, data / "splits" / SPLIT / "test.parquet")
    return data, universe, ids


def _score(data, path, notation="auto"):
    return score_predictions(data, SPLIT, path, notation, bins=2, n_boot=10)


@pytest.mark.parametrize("notation", ["prefix", "infix", "auto"])
def test_a_prediction_ten_thousand_levels_deep_is_scored(toy, tmp_path, notation):
    data, universe, ids = toy
    lines = []
    for k, pid in enumerate(ids):
        target = universe.program(int(pid))
        depth = DEEP - (k % 2)  # odd depths negate: they pass only where -f = f
        if notation == "infix":
            text = "-(" * depth + target.infix() + ")" * depth
        else:
            text = "neg " * depth + target.prefix()
        lines.append(f"{pid}\t{text}\n")
    path = tmp_path / "deep.tsv"
    path.write_text("".join(lines))
    table = _score(data, path, notation).table
    assert table.valid.all()
    outputs = universe.class_outputs[universe.semantic_class[ids]]
    negated_is_same = (outputs == -outputs).all(axis=1)
    assert table["pass@1"].tolist() == [1.0 if k % 2 == 0 or negated_is_same[k] else 0.0 for k in range(len(ids))]


@pytest.mark.slow(seconds=3)
def test_a_wide_prediction_is_scored(toy, tmp_path):
    data, universe, ids = toy
    lines = []
    for pid in ids:
        tree = universe.program(int(pid))
        for _ in range(13):  # min(f, f) = f, doubled to 8,192 copies of f
            tree = Program("min", (tree, tree))
        lines.append(f"{pid}\t{tree.prefix()}\n")
    path = tmp_path / "wide.tsv"
    path.write_text("".join(lines))
    assert _score(data, path).summary["pass@1"] == 1.0


# --- the fuzzer ---------------------------------------------------------------------

BAD_IDS = ["abc", "1.5", "", "0x1f", "--1", "one", "1 2"]
JUNK = st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=30)


@st.composite
def prediction_files(draw, universe, ids):
    """(file bytes, first malformed line or "missing" or None, {line: expected pass})."""
    g = universe.grammar
    lines: list[tuple[str, bytes, object]] = []  # (kind, bytes without the line end, payload)
    for pid in draw(st.lists(st.sampled_from(ids.tolist()), max_size=len(ids) + 2)):
        target = universe.program(pid)
        style = draw(st.sampled_from(["prefix", "infix", "deep_prefix", "deep_infix", "wide", "junk", "tokens"]))
        expect = None  # unknown: junk may happen to parse
        if style in ("prefix", "infix"):
            text, expect = getattr(target, style)(), True
        elif style.startswith("deep"):
            depth = draw(st.sampled_from([1, 2, 3, DEEP - 1, DEEP]))
            text = ("neg " * depth + target.prefix()) if style == "deep_prefix" else ("-(" * depth + target.infix() + ")" * depth)
            expect = depth % 2 == 0 or bool((universe.outputs(pid) == 0).all())
        elif style == "wide":
            text, expect = "max " * 300 + " ".join([target.prefix()] * 301), True
        elif style == "tokens":
            text = " ".join(draw(st.lists(st.sampled_from(g.symbols + ("(", ")", "-", "zz")), max_size=12)))
        else:
            text = draw(JUNK)
        lines.append(("prediction", f"{pid}\t{text}".encode(), (pid, expect)))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["blank", "comment", "no_tab", "bad_id", "unknown_id", "not_utf8"]))
        raw = {
            "blank": lambda: draw(st.sampled_from(["", "   ", "\t", "\x0c"])),
            "comment": lambda: "# " + draw(JUNK),
            "no_tab": lambda: draw(JUNK.filter(lambda s: "\t" not in s and s.strip() and not s.lstrip().startswith("#"))),
            "bad_id": lambda: f"{draw(st.sampled_from(BAD_IDS))}\tx",
            "unknown_id": lambda: f"{draw(st.sampled_from([-1, 10**9, int(ids.max()) + 10**6]))}\tx",
            "not_utf8": lambda: b"\xff\xfe" + draw(st.binary(max_size=5)),
        }[kind]()
        lines.insert(draw(st.integers(0, len(lines))), (kind, raw if isinstance(raw, bytes) else raw.encode(), None))
    endings = [draw(st.sampled_from([b"\n", b"\r\n"])) for _ in lines]
    data = b"".join(raw + end for (_, raw, _), end in zip(lines, endings))
    # the documented rules, as a reference: the first malformed line is named
    first, seen, passes = None, set(), {}
    for n, (kind, _, payload) in enumerate(lines, start=1):
        if kind in ("blank", "comment"):
            continue
        if kind != "prediction" or payload[0] in seen:
            first = n
            break
        seen.add(payload[0])
        passes[payload[0]] = payload[1]
    if first is None and seen != set(ids.tolist()):
        first = "missing"
    return data, first, passes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_the_scorer_never_raises_anything_but_its_error_naming_the_line(toy, tmp_path, data):
    folder, universe, ids = toy
    content, first, passes = data.draw(prediction_files(universe, ids))
    path = tmp_path / "predictions.tsv"
    path.write_bytes(content)
    try:
        score = _score(folder, path)
    except PredictionFileError as err:
        assert first is not None, f"refused a well-formed file: {err}"
        if first == "missing":
            assert "have no prediction" in str(err)
        else:
            assert f"{path}:{first}:" in str(err)
        return
    assert first is None, f"accepted a file whose line {first} is malformed"
    got = dict(zip(score.table.program_id.tolist(), score.table["pass@1"].tolist()))
    for pid, expect in passes.items():
        if expect is not None:
            assert got[pid] == float(expect), pid
