# synthgen: `make repro` reproduces the study, `make test` runs the tests.
# Both bootstrap .venv first (idempotent: a second run installs nothing).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.synthgen-installed
# Pinned: a CPU build of this exact release lies on the machines we run on; a looser
# spec would pull several GB of CUDA wheels.
TORCH := torch==2.13.0
# The installer, pinned too: the bootstrap resolves and installs with it, so another
# release could install differently; `make lock` uses the same one.
UV := uv==0.13.9
# The exact version of every other package the bootstrap installs (constraints on
# pyproject.toml's ranges), so that a fresh clone gets the environment that made the
# committed results; `make lock` resolves it afresh.
LOCK := requirements.lock
PROFILE ?=
JOBS ?= 2                # workspaces running the per-model stages of `make repro` at once (1: plain dvc repro)

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup lock repro release check-release test test-fast results calibrate lab bench bench-tests bench-repro bench-paper bench-paper-gpu reliability profile clean-venv

setup: $(STAMP)

# One uv call installs everything, torch included: it resolves, downloads and unpacks in
# parallel and compiles bytecode (without it every stage would compile seaborn, scipy and
# torch's Python afresh at each start). uv does not read pip's configuration, so the folders
# pip finds wheels in (find-links: where a machine keeps its CPU build of torch) are passed
# on; where none are configured, pip installs torch first, as it always took the build the
# machine offers, and uv keeps it (it satisfies the pin). docs/performance.md has the times.
# (Expanded in the recipe only: a make that needs no install never asks pip.)
FIND_LINKS = $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(UV)" $(if $(FIND_LINKS),,"$(TORCH)")
	$(BIN)/python -m uv pip install --quiet --compile-bytecode --python $(BIN)/python \
		$(foreach d,$(FIND_LINKS),--find-links $(d)) --constraint $(LOCK) -e ".[dev]" "$(TORCH)"
	$(BIN)/python -m ipykernel install --sys-prefix --name synthgen --display-name "Python (synthgen)" >/dev/null
	@touch $(STAMP)
	@echo "synthgen: environment ready in $(VENV)"

## lock: requirements.lock resolved afresh from pyproject.toml (PyPI's newest versions that its ranges
## admit; torch left out: TORCH pins it). Where the machine keeps torch's CPU build (find-links), torch
## resolves to it and its CUDA packages stay out of the file. Then `make test`, and rerun what the new
## versions change.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(UV)"
	@printf '%s\n' "$(TORCH)" > $(VENV)/torch-pin.txt
	$(BIN)/python -m uv pip compile --quiet --python $(BIN)/python pyproject.toml --extra dev \
		$(foreach d,$(FIND_LINKS),--find-links $(d)) --constraint $(VENV)/torch-pin.txt --no-emit-package torch \
		--annotation-style line --custom-compile-command "make lock" --upgrade -o $(LOCK)

## repro: run the whole study (dvc repro, the per-model stages on JOBS workspaces at once:
## synthgen/fan_out.py); PROFILE=smoke|default|paper switches profile first
repro: setup
	$(if $(PROFILE),$(BIN)/synthgen profile $(PROFILE))
	$(BIN)/synthgen check-params
	$(BIN)/python -m synthgen.fan_out --workers $(JOBS)
	@$(MAKE) --no-print-directory release

## release: data/, the released benchmark, from the pipeline's artifacts, recorded in data.dvc
## (rebuilt only when dvc.lock says a stage ran since; the same artifacts give the same bytes)
release: data/manifest.json

data/manifest.json: dvc.lock
	$(BIN)/python -m synthgen.release build
	$(BIN)/dvc add --quiet data

## check-release: a fresh rebuild of the benchmark has the bytes that data/ and data.dvc hold
check-release: setup
	$(BIN)/python -m synthgen.release check

## test: the test suite (unit tests and a smoke pipeline) on two workers; the smoke pipeline
## is built once for both, and an idle worker takes the other's queued tests (tests/conftest.py)
test: setup
	$(BIN)/python -m pytest -n 2 --dist worksteal

## test-fast: the tests not marked slow, for the edit-and-test loop (about a minute): no smoke pipeline,
## no compile (tests/conftest.py marks every test of the smoke run slow); `make test` runs them all
test-fast: setup
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not slow"

## results: the verdicts, the instrument's floor test and pass@1 per split, from reports/metrics/ (docs/terminal.md)
results: setup
	$(BIN)/synthgen results

## calibrate: the recipe sweep on iid's validation functions (notebook 09, docs/calibration.md); outside
## `make repro`: it trains every recipe of params.yaml's calibration section (resumable: runs done are read back)
## (RECIPES="base,tasks_800k": only those, the base always first; empty: every recipe listed)
RECIPES ?=
calibrate: setup
	$(BIN)/synthgen check-params
	$(BIN)/dvc repro splits
	$(BIN)/python -m synthgen.notebook 09_calibration $(if $(RECIPES),-p recipes "[$(RECIPES)]")

## lab: JupyterLab on the notebooks, with the project's kernel
lab: setup
	$(BIN)/jupyter lab notebooks/

## bench: the speed benchmarks, each a table with a baseline measured in the same run and the ratio (the
## other scripts of benchmarks/ are checks and studies that take arguments or hours: see their docstrings)
BENCHES := enumeration example_encoding fan_out search spaces training
bench: setup
	@for b in $(BENCHES); do echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py || exit 1; done

## bench-tests: a fresh clone's `make test` at BASELINE against HEAD, empty caches (about 15 minutes)
BASELINE ?= 1b60af8
bench-tests:
	$(PYTHON) benchmarks/test_suite.py --baseline $(BASELINE)

## bench-repro: one uninterrupted `make repro` from a fresh clone, empty caches, timed part by part
## against the 4-hour budget, its outputs checked against dvc.lock (hours: nothing else should run)
bench-repro: setup
	$(BIN)/python benchmarks/repro_time.py --out reports/repro_time

## bench-paper: peak memory of the paper profile's data stages here (tens of minutes)
bench-paper: setup
	$(BIN)/python benchmarks/paper_profile.py

## bench-paper-gpu: the paper profile's training on a CUDA GPU: throughput and a 4-minute iid run
bench-paper-gpu: setup
	$(BIN)/python benchmarks/paper_gpu.py --out reports/paper_gpu

## reliability: the three reliability figures of docs/reliability.md (fuzzed parsers, killed training, two reproductions)
reliability: setup
	$(BIN)/python benchmarks/reliability.py parsers
	$(BIN)/python benchmarks/reliability.py training
	$(BIN)/python benchmarks/reliability.py reproduce

profile: setup
	$(BIN)/synthgen profile $(PROFILE)

clean-venv:
	rm -rf $(VENV)
