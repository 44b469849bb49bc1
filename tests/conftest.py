"""Shared fixtures: the smoke profile's params and universe (17,830 programs), built once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar
from synthgen.params import Params, validate_params
from synthgen.profiles import profile_text

ROOT = Path(__file__).resolve().parent.parent


def smoke_params(**sections) -> Params:
    """The smoke profile, with some sections' keys replaced: ``model={"width": 16}``."""
    raw = yaml.safe_load(profile_text(ROOT, "smoke"))
    for section, values in sections.items():
        raw[section].update(values)
    return validate_params(raw, source="smoke")


@pytest.fixture(scope="session")
def params() -> Params:
    return smoke_params()


@pytest.fixture(scope="session")
def universe(params):
    return enumerate_universe(Grammar.from_params(params.grammar))


@pytest.fixture(scope="session")
def valid_ids(universe) -> np.ndarray:
    return np.flatnonzero(universe.semantic_class >= 0)
