"""The study's knobs: the schema of ``params.yaml`` and its loader.

Every stage calls :func:`load_params` first.  An invalid file stops with one line that
names the key, the bad value and what is allowed, before any work is done and before any
file is written.  The schema is a tree of pydantic models with ``extra="forbid"`` and
strict types, so a typo in a key or ``max_size: "7"`` is an error, not a silent default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import yaml
from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator,
)

UNARY_OPERATORS = ("neg", "abs")
BINARY_OPERATORS = ("add", "sub", "mul", "div", "mod", "min", "max")
MAX_GRID_POINTS = 4096
# A product of two values within the bound must fit in int64, so that no value is ever
# silently wrapped before it is compared with the bound: (2**31 - 1)**2 < 2**63.
MAX_VALUE_BOUND = 2**31 - 1
MAX_SIZE_LIMIT = 9
MAX_PQ = 8  # stems or bases longer than the deepest or widest tree of any universe add only nulls
MAX_SYNTAX_DIMS = 1024
SEMANTIC_TRANSFORMS = ("asinh", "none")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


def _at_least(low: int) -> AfterValidator:
    """A field check: an integer >= ``low``, with the one-line message the user sees."""

    def check(v: int) -> int:
        if v < low:
            raise ValueError(f"must be an integer >= {low}")
        return v

    return AfterValidator(check)


Count = Annotated[int, _at_least(1)]  # a number of things: at least one
AtLeastTwo = Annotated[int, _at_least(2)]
NonNegative = Annotated[int, _at_least(0)]


class ParamsError(ValueError):
    """An invalid params file; ``str(err)`` is the one-line message for the user."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Grid(_Section):
    """The input grid: every variable ranges over the integers ``low..high``."""

    low: int = Field(description="smallest input value")
    high: int = Field(description="largest input value")

    @model_validator(mode="after")
    def _not_inverted(self) -> "Grid":
        if self.low > self.high:
            raise ValueError(f"empty or inverted grid: low ({self.low}) must be <= high ({self.high})")
        return self


class GrammarParams(_Section):
    """The arithmetic DSL (STUDY.md section 1)."""

    variables: list[str]
    constants: list[int]
    unary: list[str]
    binary: list[str]
    max_size: int
    grid: Grid
    value_bound: int

    @field_validator("variables")
    @classmethod
    def _variables(cls, v: list[str]) -> list[str]:
        if not 1 <= len(v) <= 3:
            raise ValueError("must list 1 to 3 variable names")
        for name in v:
            if not _IDENTIFIER.match(name) or name in UNARY_OPERATORS + BINARY_OPERATORS:
                raise ValueError(
                    f"{name!r} is not allowed: a variable is a lower-case identifier that is not an operator name"
                )
        if len(set(v)) != len(v):
            raise ValueError("variable names must be distinct")
        return v

    @field_validator("constants")
    @classmethod
    def _constants(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("constants must be distinct")
        return v

    @field_validator("unary")
    @classmethod
    def _unary(cls, v: list[str]) -> list[str]:
        return _operator_subset(v, UNARY_OPERATORS)

    @field_validator("binary")
    @classmethod
    def _binary(cls, v: list[str]) -> list[str]:
        return _operator_subset(v, BINARY_OPERATORS)

    @field_validator("max_size")
    @classmethod
    def _max_size(cls, v: int) -> int:
        if not 1 <= v <= MAX_SIZE_LIMIT:
            raise ValueError(f"must be an integer from 1 to {MAX_SIZE_LIMIT}")
        return v

    @field_validator("value_bound")
    @classmethod
    def _value_bound(cls, v: int) -> int:
        if not 1 <= v <= MAX_VALUE_BOUND:
            raise ValueError(f"must be an integer from 1 to {MAX_VALUE_BOUND} (2**31 - 1)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "GrammarParams":
        points = (self.grid.high - self.grid.low + 1) ** len(self.variables)
        if points > MAX_GRID_POINTS:
            raise ValueError(
                f"grid has {points} points over {len(self.variables)} variables; at most {MAX_GRID_POINTS} allowed"
            )
        worst = max(abs(self.grid.low), abs(self.grid.high), *(abs(c) for c in self.constants))
        if worst > self.value_bound:
            raise ValueError(f"value_bound ({self.value_bound}) must cover every grid value and constant ({worst})")
        return self

    @property
    def n_points(self) -> int:
        return (self.grid.high - self.grid.low + 1) ** len(self.variables)


def program_counts(n_leaves: int, n_unary: int, n_binary: int, max_size: int) -> list[int]:
    """Number of syntactically distinct programs of each size 1..max_size, from the
    grammar's recurrence  N(1) = L,  N(s) = U N(s-1) + B sum_{i+j=s-1} N(i) N(j).

    Here, before the grammar module, so that params can check a grammar's size."""
    counts = [0] * (max_size + 1)
    for s in range(1, max_size + 1):
        counts[s] = (n_leaves if s == 1 else 0) + n_unary * counts[s - 1] + n_binary * sum(
            counts[i] * counts[s - 1 - i] for i in range(1, s - 1)
        )
    return counts[1:]


def _operator_subset(v: list[str], allowed: tuple[str, ...]) -> list[str]:
    for op in v:
        if op not in allowed:
            raise ValueError(f"unknown operator {op!r}; the DSL has {', '.join(allowed)}")
    if len(set(v)) != len(v):
        raise ValueError("operators must be distinct")
    return v


class EnumerationParams(_Section):
    """How the universe is stored (STUDY.md section 2)."""

    compression: str = Field(description="Parquet codec")
    row_group_size: Annotated[int, _at_least(1024)]

    @field_validator("compression")
    @classmethod
    def _codec(cls, v: str) -> str:
        allowed = ("zstd", "snappy", "gzip", "none")
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return v


# The constructions of the syntactic space (synthgen/spaces.py builds each; a test checks
# that the two lists agree).  svd is the paper's.
SYNTAX_EMBEDDINGS = ("svd", "tfidf_svd", "random_projection", "landmark_mds")
MAX_LANDMARKS = 10_000  # their distance matrix is dense: 10,000 take 0.8 GB and an eigh of minutes


class SyntaxParams(_Section):
    """The syntactic space: pq-gram profiles embedded in ``dims`` dimensions (STUDY.md section 3)."""

    p: int = Field(description="pq-gram stem: a node and its p-1 ancestors")
    q: int = Field(description="pq-gram base: q consecutive children")
    embedding: str = Field(description="the construction; svd is the paper's truncated SVD of the counts")
    dims: int
    fit_sample: int | None = Field(description="programs the SVD (svd, tfidf_svd) is fitted on; None: all")
    landmarks: int = Field(description="landmark programs of landmark_mds")

    @field_validator("embedding")
    @classmethod
    def _embedding(cls, v: str) -> str:
        if v not in SYNTAX_EMBEDDINGS:
            raise ValueError(f"must be one of {', '.join(SYNTAX_EMBEDDINGS)}")
        return v

    @field_validator("landmarks")
    @classmethod
    def _landmarks(cls, v: int) -> int:
        if not 2 <= v <= MAX_LANDMARKS:
            raise ValueError(f"must be an integer from 2 to {MAX_LANDMARKS}")
        return v

    @field_validator("p", "q")
    @classmethod
    def _pq(cls, v: int) -> int:
        if not 1 <= v <= MAX_PQ:
            raise ValueError(f"must be an integer from 1 to {MAX_PQ}")
        return v

    @field_validator("dims")
    @classmethod
    def _dims(cls, v: int) -> int:
        if not 1 <= v <= MAX_SYNTAX_DIMS:
            raise ValueError(f"must be an integer from 1 to {MAX_SYNTAX_DIMS}")
        return v

    @model_validator(mode="after")
    def _samples_cover_dims(self) -> "SyntaxParams":
        if self.fit_sample is not None and self.fit_sample < self.dims:
            raise ValueError(f"fit_sample ({self.fit_sample}) must be null or at least dims ({self.dims})")
        if self.landmarks <= self.dims:
            # classical MDS of L landmarks has at most L - 1 axes (one is lost to centring)
            raise ValueError(f"landmarks ({self.landmarks}) must be greater than dims ({self.dims})")
        return self


class SemanticsParams(_Section):
    """The semantic space: outputs on the grid, z-scored, projected by PCA (STUDY.md section 3)."""

    dims: int
    transform: str = Field(description="applied to outputs before z-scoring")

    @field_validator("dims")
    @classmethod
    def _dims(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be an integer >= 1 (and at most the number of grid points)")
        return v

    @field_validator("transform")
    @classmethod
    def _transform(cls, v: str) -> str:
        if v not in SEMANTIC_TRANSFORMS:
            raise ValueError(f"must be one of {', '.join(SEMANTIC_TRANSFORMS)}")
        return v


class DensityParams(_Section):
    """The density family: a shifted test set and equal-size training sets."""

    cells: AtLeastTwo = Field(description="k-means cells for diverse (stratified) sampling")
    neighbours: Count = Field(description="k of the k-th-neighbour distance that measures local sparseness")
    tilt: float = Field(description="test weight = sparseness ** tilt; 0 = no shift")
    reference: AtLeastTwo = Field(description="pool programs the sparseness is measured against (a seeded sample)")
    fit_sample: int | None = Field(
        description="above this many pool programs, the sparseness and the k-means cells use a seeded sample; None: all")

    @field_validator("tilt")
    @classmethod
    def _tilt(cls, v: float) -> float:
        if not 0 <= v <= 10:
            raise ValueError("must be a number from 0 to 10")
        return v

    @model_validator(mode="after")
    def _sample_covers(self) -> "DensityParams":
        if self.fit_sample is not None and self.fit_sample < max(self.reference, self.cells):
            raise ValueError(f"fit_sample ({self.fit_sample}) must be null or at least reference ({self.reference}) "
                             f"and cells ({self.cells})")
        return self


class SupportParams(_Section):
    """The support family: R disjoint held-out regions per split, all out of one training set."""

    region_share: float = Field(description="share of the pool in each held-out region (programs for support_syntax, "
                                            "functions for support_semantics)")
    regions: Count = Field(description="held-out regions per support split (disjoint; results are averaged over them)")

    @field_validator("region_share")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0 < v <= 0.5:
            raise ValueError("must be a number in (0, 0.5]")
        return v

    @model_validator(mode="after")
    def _regions_fit(self) -> "SupportParams":
        if self.regions * self.region_share > 0.8:
            raise ValueError(f"regions x region_share = {self.regions} x {self.region_share} holds out more than 80% of "
                             "the pool from one training set; lower one of them")
        return self


class SplitsParams(_Section):
    """Train and test sets (STUDY.md section 4)."""

    pool: str
    guard: str
    min_size: Count
    train_size: Count
    test_size: Count = Field(description="test functions per split (spread evenly over a support split's regions)")
    tasks_per_function: Count = Field(description="how often a test set may hold one semantic class")
    validation_size: NonNegative = Field(description="iid's validation functions, out of every split's training and test sets")
    density: DensityParams
    support: SupportParams

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: str) -> str:
        if v not in ("representatives", "programs"):
            raise ValueError("must be representatives (one program per semantic class) or programs")
        return v

    @field_validator("guard")
    @classmethod
    def _guard(cls, v: str) -> str:
        if v not in ("held_out", "all"):
            raise ValueError("must be held_out (the support splits) or all (every split)")
        return v

    @model_validator(mode="after")
    def _density_sample_covers_test(self) -> "SplitsParams":
        sample = self.density.fit_sample
        if sample is not None and sample < self.test_size:
            raise ValueError(f"density.fit_sample ({sample}) must be null or at least test_size ({self.test_size})")
        if self.test_size < self.support.regions:
            raise ValueError(f"test_size ({self.test_size}) must be at least support.regions ({self.support.regions}): "
                             "every region needs a test function")
        return self


class TaskParams(_Section):
    """The synthesis task (STUDY.md section 5): K input-output examples of one program."""

    n_examples: Count


class ModelParams(_Section):
    """Sizes of the encoder-decoder transformer (synthgen/model.py)."""

    encoder_layers: Count
    decoder_layers: Count
    width: Count
    heads: Count
    dropout: float

    @field_validator("dropout")
    @classmethod
    def _dropout(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError("must be a number in [0, 1)")
        return v

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "ModelParams":
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        return self


class TrainingParams(_Section):
    """The training run (synthgen/training.py).  The budget is a number of tasks."""

    tasks: Count
    batch_size: Count
    lr: float
    min_lr: float
    warmup: float
    weight_decay: float
    grad_clip: float
    bf16: bool | Literal["auto"]
    device: str
    threads: Count
    compile: bool
    checkpoint_every: Count
    log_every: Count

    @field_validator("lr", "grad_clip")
    @classmethod
    def _positive_float(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("must be a number > 0")
        return v

    @field_validator("min_lr", "weight_decay")
    @classmethod
    def _non_negative(cls, v: float) -> float:
        if not v >= 0:
            raise ValueError("must be a number >= 0")
        return v

    @field_validator("bf16", mode="before")
    @classmethod
    def _precision(cls, v):
        # auto: bf16 autocast where the device computes in bf16 natively (synthgen.training.uses_bf16)
        if v is True or v is False or v == "auto":
            return v
        raise ValueError("must be true, false or auto (bf16 where the CPU or GPU has bf16 instructions)")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        # cuda:N picks one GPU of several: each worker of a DVC queue gets its own (docs/scaling-out.md)
        if not (v in ("cpu", "cuda") or re.fullmatch(r"cuda:(0|[1-9][0-9]*)", v)):
            raise ValueError("must be cpu, cuda or cuda:N (N the index of a GPU, e.g. cuda:1)")
        return v

    @field_validator("warmup")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError("must be a fraction of the steps in [0, 1)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "TrainingParams":
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        if self.checkpoint_every % self.log_every:
            # a checkpoint then never splits a logging interval, so resuming is exact
            raise ValueError(
                f"log_every ({self.log_every}) must divide checkpoint_every ({self.checkpoint_every})"
            )
        return self

    @property
    def steps(self) -> int:
        """Optimiser steps of the budget: ``ceil(tasks / batch_size)``."""
        return -(-self.tasks // self.batch_size)


class DecodingParams(_Section):
    """How programs are written from a trained model (synthgen/decoding.py)."""

    constrained: bool
    beam_size: Count
    temperature: float

    @field_validator("temperature")
    @classmethod
    def _temperature(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("must be a number > 0 (use greedy decoding for temperature 0)")
        return v


class EvaluationParams(_Section):
    """Metrics (synthgen/evaluation.py): pass@k from n samples, bootstrap intervals."""

    k: list[int]
    n_samples: Count
    bootstrap: Count
    confidence: float

    @field_validator("k")
    @classmethod
    def _k(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v) or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list of distinct integers >= 1")
        return v

    @field_validator("confidence")
    @classmethod
    def _confidence(cls, v: float) -> float:
        if not 0.0 < v < 1.0:
            raise ValueError("must be a number in (0, 1)")
        return v

    @model_validator(mode="after")
    def _k_at_most_n(self) -> "EvaluationParams":
        if max(self.k) > self.n_samples:
            # the unbiased pass@k estimator needs k <= n
            raise ValueError(f"every k must be <= n_samples ({self.n_samples}); got k = {max(self.k)}")
        return self


class MeasurementParams(_Section):
    """How results are measured (STUDY.md section 8, synthgen/strata.py, synthgen/stats.py):
    the strata of a task, the strata comparisons are matched on, their reference mix, and
    the instrument's floor (synthgen/verdicts.py)."""

    class_size_edges: list[int] = Field(description="commonness bins: programs computing a function, cut at these")
    match_on: list[str] = Field(description="strata a comparison between splits is matched on")
    reference_mix: str = Field(description="the stratum mix comparisons are post-stratified to")
    floor: float = Field(description="iid pass@1 on functions without a twin below which model comparisons are untested")

    @field_validator("class_size_edges")
    @classmethod
    def _edges(cls, v: list[int]) -> list[int]:
        if not v or v[0] < 2 or any(a >= b for a, b in zip(v, v[1:])):
            raise ValueError("must be a non-empty, strictly increasing list of integers >= 2")
        return v

    @field_validator("match_on")
    @classmethod
    def _match_on(cls, v: list[str]) -> list[str]:
        allowed = ("kind", "commonness", "size")
        if any(s not in allowed for s in v) or len(set(v)) != len(v):
            raise ValueError(f"must be a list of distinct strata from: {', '.join(allowed)} (empty: raw figures only)")
        return v

    @field_validator("reference_mix")
    @classmethod
    def _mix(cls, v: str) -> str:
        if v not in ("iid", "uniform"):
            raise ValueError("must be iid (the iid test set's mix of strata) or uniform (every stratum alike)")
        return v

    @field_validator("floor")
    @classmethod
    def _floor(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError("must be a number in [0, 1] (a share of functions solved)")
        return v


def _seed_list(v: list[int]) -> list[int]:
    if not v or any(not 0 <= s < 2**32 for s in v) or len(set(v)) != len(v):
        raise ValueError("must be a non-empty list of distinct integers from 0 to 2**32 - 1")
    return v


SeedList = Annotated[list[int], AfterValidator(_seed_list)]


# synthgen.split_files.SPLIT_NAMES, spelled out here so that validating params imports no
# data module (tests/test_params.py checks that the two agree)
SPLIT_NAMES = ("iid", "density_random", "density_diverse_syntax", "density_diverse_semantics", "density_diverse_both",
               "support_syntax", "support_semantics")


class ScalingSize(_Section):
    """One model size of the scaling grid: the shape keys of ``model`` (its dropout applies)."""

    encoder_layers: Count
    decoder_layers: Count
    width: Count
    heads: Count

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "ScalingSize":
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        return self


class ScalingParams(_Section):
    """The scaling grid (STUDY.md section 6, synthgen/scaling_run.py): one run per
    (size, split) with the largest budget; smaller budgets are snapshots along the way."""

    sizes: dict[str, ScalingSize] = Field(description="named model sizes; dvc.yaml's matrix lists the names")
    tasks: Count = Field(description="the largest budget: tasks seen by each run")
    budgets: list[float] = Field(description="shares of tasks at which a snapshot is evaluated")
    seeds: SeedList = Field(description="training seeds: one run per (size, split, seed)")
    splits: list[str] = Field(description="the splits the grid trains on; dvc.yaml's matrix lists them")

    @field_validator("splits")
    @classmethod
    def _splits(cls, v: list[str]) -> list[str]:
        if "iid" not in v or len(set(v)) != len(v) or not set(v) <= set(SPLIT_NAMES):
            raise ValueError(f"must be distinct split names including iid, from {', '.join(SPLIT_NAMES)}")
        return v

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: dict) -> dict:
        if len(v) < 2:
            raise ValueError("must name at least 2 model sizes: a scaling fit needs a range of sizes")
        for name in v:
            if not _IDENTIFIER.match(name):
                raise ValueError(f"size name {name!r} must be a lower-case identifier (it names files)")
        return v

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < b <= 1 for b in v) or any(a >= b for a, b in zip(v, v[1:])) or v[-1] != 1:
            raise ValueError("must be strictly increasing shares in (0, 1] ending with 1 (the whole run)")
        return v


class SearchParams(_Section):
    """Search-based synthesis (STUDY.md section 7, synthgen/search/, notebook 08).  Each
    method runs once with its largest budget; a smaller budget is a prefix of that run."""

    tasks: Count = Field(description="test tasks searched per split: the first N of each test set")
    programs: list[int] = Field(description="enumerative search: budgets in programs examined")
    samples: list[int] = Field(description="sample-and-filter: samples drawn per task")
    expansions: list[int] = Field(description="best-first search: nodes expanded per task")

    @field_validator("programs", "samples", "expansions")
    @classmethod
    def _budgets(cls, v: list[int]) -> list[int]:
        if not v or v[0] < 1 or any(a >= b for a, b in zip(v, v[1:])):
            raise ValueError("must be a non-empty, strictly increasing list of integers >= 1")
        return v


RECIPE_KEYS = ("model.", "training.", "splits.train_size", "tasks.n_examples")
"""What a calibration recipe may change: how the synthesizer is built and trained, how many
distinct programs it trains on, and K.  Nothing that changes the universe, a split's test
or validation functions, or how results are measured."""


class CalibrationParams(_Section):
    """The calibration sweep (synthgen/calibration.py, notebook 09, docs/calibration.md):
    recipes trained on iid's training candidates and read on iid's validation functions,
    never on a test set; the selection rule's constants."""

    seeds: SeedList = Field(description="training seeds of every recipe")
    validation_functions: Count | None = Field(description="the first N validation functions (null: all)")
    base: str = Field(description="the reference recipe: every cost is a multiple of its CPU time")
    max_cost: float = Field(description="eligible recipes cost at most this many times the base's CPU time")
    tolerance: float = Field(description="recipes this close to the best no-twin pass@1 tie; the cheapest wins")
    recipes: dict[str, dict[str, Any]] = Field(description="name -> dotted params keys the recipe changes")

    @field_validator("recipes")
    @classmethod
    def _recipes(cls, v: dict) -> dict:
        if not v:
            raise ValueError("must name at least one recipe")
        for name, changes in v.items():
            if not _IDENTIFIER.match(name):
                raise ValueError(f"recipe name {name!r} must be a lower-case identifier (it names files)")
            for key in changes:
                if not any(key == k or (k.endswith(".") and key.startswith(k)) for k in RECIPE_KEYS):
                    raise ValueError(f"recipe {name}: {key} cannot be calibrated; allowed: model.*, training.*, "
                                     "splits.train_size, tasks.n_examples")
        return v

    @model_validator(mode="after")
    def _base_and_constants(self) -> "CalibrationParams":
        if self.base not in self.recipes:
            raise ValueError(f"base ({self.base!r}) must be one of the recipes: {', '.join(self.recipes)}")
        if not self.max_cost >= 1:
            raise ValueError(f"max_cost ({self.max_cost}) must be >= 1 (the base recipe is always eligible)")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"tolerance ({self.tolerance}) must be in [0, 1)")
        return self


class Params(_Section):
    """The whole of ``params.yaml``."""

    seed: int
    seeds: SeedList = Field(description="training seeds: one model per (split, seed)")
    grammar: GrammarParams
    enumeration: EnumerationParams
    syntax: SyntaxParams
    semantics: SemanticsParams
    splits: SplitsParams
    tasks: TaskParams
    model: ModelParams
    training: TrainingParams
    decoding: DecodingParams
    evaluation: EvaluationParams
    measurement: MeasurementParams
    scaling: ScalingParams
    search: SearchParams
    calibration: CalibrationParams | None = None

    # Checks across sections: field validators see the sections validated before them.
    @field_validator("scaling")
    @classmethod
    def _snapshots_are_distinct_steps(cls, v: ScalingParams, info: ValidationInfo) -> ScalingParams:
        training = info.data.get("training")
        if training is not None:
            steps = -(-v.tasks // training.batch_size)
            at = [round(b * steps) for b in v.budgets]
            if at[0] < 1 or len(set(at)) < len(at):
                raise ValueError(
                    f"budgets {v.budgets} of {steps} steps (tasks / training.batch_size) fall on steps {at}; "
                    "each must be a distinct step >= 1: raise tasks or spread the budgets"
                )
        return v

    @field_validator("syntax")
    @classmethod
    def _grams_fit_int64(cls, v: SyntaxParams, info: ValidationInfo) -> SyntaxParams:
        grammar = info.data.get("grammar")
        if grammar is not None:
            labels = 1 + len(grammar.variables) + len(grammar.constants) + len(grammar.unary) + len(grammar.binary)
            if labels ** (v.p + v.q) >= 2**63:
                raise ValueError(
                    f"p + q = {v.p + v.q} is too large: grams of {labels - 1} symbols must fit 64 bits; lower p or q"
                )
        return v

    @field_validator("semantics")
    @classmethod
    def _dims_within_grid(cls, v: SemanticsParams, info: ValidationInfo) -> SemanticsParams:
        grammar = info.data.get("grammar")
        if grammar is not None and v.dims > grammar.n_points:
            raise ValueError(f"dims ({v.dims}) must not exceed the {grammar.n_points} grid points")
        return v

    @field_validator("splits")
    @classmethod
    def _min_size_within_grammar(cls, v: SplitsParams, info: ValidationInfo) -> SplitsParams:
        grammar = info.data.get("grammar")
        if grammar is not None and v.min_size > grammar.max_size:
            raise ValueError(f"min_size ({v.min_size}) exceeds grammar.max_size ({grammar.max_size})")
        if grammar is not None:
            # Every split draws train_size + test_size distinct programs from the pool: a
            # grammar with fewer programs in the sizes allowed can never give them.
            leaves = len(grammar.variables) + len(grammar.constants)
            counts = program_counts(leaves, len(grammar.unary), len(grammar.binary), grammar.max_size)
            available, needed = sum(counts[v.min_size - 1 :]), v.train_size + v.test_size
            if available < needed:
                raise ValueError(
                    f"the grammar has {available:,} programs of size min_size ({v.min_size}) to max_size "
                    f"({grammar.max_size}), fewer than train_size + test_size ({needed:,})"
                )
        return v

    @field_validator("tasks")
    @classmethod
    def _examples_fit_grid(cls, v: TaskParams, info: ValidationInfo) -> TaskParams:
        grammar = info.data.get("grammar")
        if grammar is not None and v.n_examples > grammar.n_points:
            # examples are distinct grid points (drawn without replacement)
            raise ValueError(f"n_examples ({v.n_examples}) exceeds the grid's {grammar.n_points} points")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if not 0 <= v < 2**32:
            raise ValueError("must be an integer from 0 to 2**32 - 1")
        return v


def _format_error(source: str, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        parent = _model_at(Params, first["loc"][:-1])
        allowed = ", ".join(parent.model_fields) if parent else "see params.yaml"
        msg = f"{loc}: unknown key; allowed keys here: {allowed}"
    elif kind == "missing":
        msg = f"{loc}: missing key"
    else:
        text = first["msg"].removeprefix("Value error, ")
        value = first.get("input")
        # a check across keys names its keys itself: echoing the whole section would bury it
        msg = f"{loc}: {text}" if isinstance(value, Mapping) else f"{loc} = {value!r}: {text}"
    more = len(err.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {msg}{suffix}"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return None
        model = field.annotation
    return model


def validate_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed mapping; raise :class:`ParamsError` with one line."""
    if not isinstance(raw, Mapping):
        raise ParamsError(f"{source}: must be a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(dict(raw))
    except ValidationError as err:
        raise ParamsError(_format_error(source, err)) from None


def recipe_params(params: Params, name: str) -> Params:
    """``params`` with calibration recipe ``name``'s changes applied (and no calibration
    section: a recipe is one run's params).  Validated here, not when params.yaml loads:
    a recipe that a smaller grammar cannot satisfy (more training programs than it has)
    stops the calibration, not the pipeline."""
    raw = params.model_dump()
    changes = raw.pop("calibration")["recipes"][name]
    return validate_params(apply_overrides(raw, changes), source=f"calibration recipe {name}")


def apply_overrides(raw: dict, overrides: Mapping[str, Any]) -> dict:
    """Return a copy of ``raw`` with dotted keys (``"grammar.max_size"``) replaced."""
    import copy

    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ParamsError(f"override {dotted}: no section {part!r} in params")
            node = node[part]
        if leaf not in node:
            raise ParamsError(f"override {dotted}: unknown key {leaf!r}")
        node[leaf] = value
    return out


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ParamsError(f"{path}: cannot read params file ({err.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None


def load_params(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Params:
    """Read, override and validate ``params.yaml`` (the repository's, by default)."""
    if path is None:
        from synthgen.paths import repo_root

        path = repo_root() / "params.yaml"
    raw = read_yaml(path)
    if overrides:
        if not isinstance(raw, dict):
            raise ParamsError(f"{path}: must be a mapping of sections")
        raw = apply_overrides(raw, overrides)
    return validate_params(raw, source=Path(path).name)
