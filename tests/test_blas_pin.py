"""benchmarks/blas_pin.py: which outputs it compares and how it reads two runs' hashes (the
data stages it runs take minutes; their bytes are checked by the smoke run's tests)."""

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from blas_pin import DATA_STAGES, PIN, compare, data_outs, label, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_the_data_stages_are_the_pipelines_first_stages_and_their_outputs_are_read_from_the_lock():
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    stages = list(lock["stages"])
    assert stages[: len(DATA_STAGES)] == list(DATA_STAGES)
    outs = data_outs(lock)
    assert {key.split(": ")[0] for key in outs} <= set(DATA_STAGES)
    assert "spaces: artifacts/spaces" in outs and "splits: artifacts/splits" in outs
    assert not any("reports/notebooks" in key for key in outs)  # executed notebooks hold timings
    assert not any(key.startswith(("train@", "evaluate@", "results")) for key in outs)


def test_a_run_is_compared_output_by_output_with_each_reference():
    run = {"spaces: a": "1", "splits: b": "2", "splits: c": "3"}
    rows = compare(run, {"committed": {"spaces: a": "1", "splits: b": "9"}, "other": dict(run)})
    assert rows == [
        {"output": "spaces: a", "committed": "same", "other": "same"},
        {"output": "splits: b", "committed": "differs", "other": "same"},
        {"output": "splits: c", "committed": "absent", "other": "same"},
    ]
    text = table(rows)
    assert text.splitlines()[-1] == "| **all the same** | no (2 differ) | yes |"


def test_the_pin_names_kernels_every_x86_64_cpu_with_avx2_has():
    assert PIN["OPENBLAS_CORETYPE"] == "Haswell"
    assert "X86_V4" in PIN["NPY_DISABLE_CPU_FEATURES"].split()  # numpy's AVX-512 group
    assert "X86_V3" not in PIN["NPY_DISABLE_CPU_FEATURES"].split()  # AVX2 stays


def test_a_recorded_run_is_labelled_by_its_cpu_its_pin_and_what_else_it_set():
    run = {"cpu": "AMD EPYC", "vector": ["avx2"], "pinned": True, "env": {**PIN, "OMP_NUM_THREADS": "1"}}
    assert label(run, "a.json") == "AMD EPYC (avx2), pinned, OMP_NUM_THREADS=1 (a.json)"
    assert label({**run, "pinned": False, "env": {}}, "b.json") == "AMD EPYC (avx2), unpinned (b.json)"
