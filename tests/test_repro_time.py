"""benchmarks/repro_time.py: the parts of a `make repro` read from its stamped output, the
per-model stages' times, and the comparison of the run's dvc.lock with the committed one."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import repro_time  # noqa: E402

# make repro's output as the fan-out prints it (synthgen/fan_out.py), stamped in seconds
LOG = [
    (1.0, "/repo/.venv/bin/python -m pip install --quiet uv"),
    (40.0, "synthgen: environment ready in .venv"),
    (41.0, "/repo/.venv/bin/python -m synthgen.fan_out --workers 2"),
    (42.0, "Running stage 'grammar':"),
    (300.0, "Running stage 'splits':"),
    (420.0, "[w0] train@iid-0, evaluate@iid-0 ..."),
    (421.0, "[w1] train@iid-1, evaluate@iid-1 ..."),
    (422.0, "[w0] 10:00:00 Running stage 'train@iid-0':"),
    (423.0, "[w1] 10:00:01 Running stage 'train@iid-1':"),
    (1000.0, "[w0] 10:09:38 Running stage 'evaluate@iid-0':"),
    (1010.0, "[w1] 10:09:48 Running stage 'evaluate@iid-1':"),
    (1040.0, "[w0] 1 unit: ran 2 stages (618 s)"),
    (1041.0, "[w0] scaling_run@l-iid-0 ..."),
    (1042.0, "[w0] 10:10:20 Running stage 'scaling_run@l-iid-0':"),
    (1050.0, "[w1] 1 unit: ran 2 stages (627 s)"),
    (1500.0, "[w0] 1 unit: ran 1 stage (458 s)"),
    (1510.0, "Running stage 'results':"),
    (1900.0, "/repo/.venv/bin/python -m synthgen.release build"),
    (1950.0, "release: data/ holds 17 files, 7 splits"),
]


def test_the_parts_add_up_to_the_run_and_end_at_their_markers():
    parts = repro_time.parts(LOG, total=1960.0)
    assert list(parts) == list(repro_time.PARTS)
    assert parts == {"bootstrap": 40.0, "data stages": 380.0, "per-model units": 1080.0,
                     "aggregating stages": 400.0, "release": 60.0}
    assert sum(parts.values()) == pytest.approx(1960.0)


def test_without_a_bootstrap_or_workers_the_parts_still_cover_the_run():
    log = [(t, s) for t, s in LOG if not s.startswith("[w") and "environment ready" not in s]
    parts = repro_time.parts(log, total=1960.0)
    assert parts["bootstrap"] == 0 and parts["per-model units"] == 0
    assert parts["data stages"] == 1900.0 and sum(parts.values()) == pytest.approx(1960.0)


def test_each_per_model_stage_runs_until_its_workers_next_line():
    times = repro_time.stage_times(LOG)
    assert times == {"train": [578.0, 587.0], "evaluate": [40.0, 40.0], "scaling_run": [458.0]}


def test_the_locks_are_compared_output_by_output_without_the_executed_notebooks():
    def lock(**outs):
        return {"stages": {stage: {"outs": [{"path": p, "md5": h} for p, h in files]} for stage, files in outs.items()}}

    committed = lock(spaces=[("artifacts/spaces", "a"), ("reports/notebooks/03.ipynb", "n1")],
                     splits=[("artifacts/splits", "b")], search=[("reports/metrics/search.json", "c")])
    run = lock(spaces=[("artifacts/spaces", "a"), ("reports/notebooks/03.ipynb", "n2")],
               splits=[("artifacts/splits", "x")], extra=[("artifacts/new", "d")])
    got = repro_time.compare_locks(run, committed)
    assert got == {"same": 1, "compared": 2, "differ": ["splits: artifacts/splits"],
                   "only_in_run": ["extra: artifacts/new"], "only_committed": ["search: reports/metrics/search.json"]}


def test_the_table_names_the_machine_and_the_ratio_to_the_budget():
    record = {"commit": "abc1234", "cpu": "Some CPU", "cores": 2, "date": "2026-12-07 10:00 UTC", "exit": 0,
              "wall_s": 1960.0, "cpu_s": 3600.0, "peak_rss_gb": 3.4, "budget_hours": 4.0,
              "parts": repro_time.parts(LOG, 1960.0), "stages": repro_time.stage_times(LOG),
              "lock": {"same": 3, "compared": 4, "differ": ["splits: artifacts/splits"]}}
    text = repro_time.table(record)
    assert "Some CPU, 2 cores, started 2026-12-07" in text and "| **total** | **0:32:40** | 0.14x the 4-hour budget |" in text
    assert "| train | 2 | 0:09:42 | 0:09:38 – 0:09:47 |" in text
    assert "3 of 4 have the committed hash; differ: splits: artifacts/splits." in text
