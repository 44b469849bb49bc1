"""benchmarks/training.py runs: its CPU table, and its GPU table's code path dry-run on the
CPU (the CUDA-only parts, timing on a GPU against its bf16 peak, run where there is one).
Only the tables' shape and arithmetic are checked here, never a time."""

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_the_gpu_table_on_a_gpu(tmp_path):
    text, report = _run(tmp_path, "--skip-cpu", "--gpu-device", "cuda")
    assert "cpu" not in report
    _check_gpu_table(report["gpu"])
    assert report["gpu"]["device"] != "CPU"
