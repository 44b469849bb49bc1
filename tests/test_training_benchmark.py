"""benchmarks/training.py runs: its CPU table, and its GPU table's code path dry-run on the
CPU (the CUDA-only parts, timing on a GPU against its bf16 peak, run where there is one).
Only the tables' shape and arithmetic are checked here, never a time."""

import argparse
import json
import subprocess
import sys

import pytest
import torch
import yaml

from tests.conftest import ROOT
from synthgen.params import validate_params
from synthgen.profiles import profile_text

SCRIPT = ROOT / "benchmarks" / "training.py"
QUICK = ["--repeats", "2", "--steps", "2", "--gpu-steps", "2", "--peak-size", "64", "--gpu-peak-size", "64",
         "--gpu-profile", "smoke", "--no-compile"]


def _run(tmp_path, *args) -> tuple[str, dict]:
    params = tmp_path / "params.yaml"
    params.write_text(profile_text(ROOT, "smoke"))
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--params", str(params), "--json", str(out), *QUICK, *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


def _check_gpu_table(report: dict) -> None:
    rows = report["rows"]
    peak = next(v["tflop_s"] for k, v in rows.items() if k.startswith("matmul"))
    for label in ("old loop", "new loop"):
        row = rows[label]
        assert row["worst"] <= row["median"] <= row["best"]
        assert row["tflop_s"] == pytest.approx(row["best"] * report["flops_per_task"] / 1e12)
        assert row["share_of_peak"] == pytest.approx(row["tflop_s"] / peak)


@pytest.mark.slow(seconds=9)
def test_the_cpu_table_and_a_dry_run_of_the_gpu_table(tmp_path):
    text, report = _run(tmp_path, "--gpu-device", "cpu")
    rows = report["cpu"]["rows"]
    for d in ("fp32", "bf16"):
        for label in ("old loop", "new loop", "decoder-only"):
            row = rows[f"{label} {d}"]
            assert 0 < row["worst"] <= row["median"] <= row["tasks_s"]
            assert 0 < row["mfu"]
        assert len(report["cpu"]["ratios"][d]["rounds"]) == 2
        assert f"new loop / old loop, {d}:" in text
    _check_gpu_table(report["gpu"])
    assert "target >= 35% on an H200-class GPU" in text


def test_dtypes_leaves_out_the_bf16_rows(capsys):
    """``--dtypes fp32`` (a CPU that only emulates bf16): no bf16 row, trial or ratio; a
    name outside fp32 and bf16 is refused."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import training as bench
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert bench._dtype_list("fp32") == ("fp32",)
    assert bench._dtype_list(" bf16, fp32 ,bf16") == ("bf16", "fp32")
    for bad in ("fp16", "", "fp32,int8"):
        with pytest.raises(argparse.ArgumentTypeError, match="comma-separated list of fp32, bf16"):
            bench._dtype_list(bad)
    P = validate_params(yaml.safe_load(profile_text(ROOT, "smoke")))
    report = bench.cpu_table(P, repeats=1, steps=1, peak_size=32, dtype_names=("fp32",))
    assert not [k for k in report["rows"] if "bf16" in k] and "new loop fp32" in report["rows"]
    assert set(report["ratios"]) == {"fp32"}
    assert "bf16" not in capsys.readouterr().out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_the_gpu_table_on_a_gpu(tmp_path):
    text, report = _run(tmp_path, "--skip-cpu", "--gpu-device", "cuda")
    assert "cpu" not in report
    _check_gpu_table(report["gpu"])
    assert report["gpu"]["device"] != "CPU"
