"""The study's two metric spaces (STUDY.md section 3), as scikit-learn transformers.

- The syntactic space: a program's pq-gram profile (counts), embedded in ``dims``
  dimensions by one of four constructions (``syntax.embedding``): :class:`SyntaxSpace`
  (``svd``, the paper's truncated SVD), :class:`TfidfSyntaxSpace` (``tfidf_svd``),
  :class:`ProjectionSyntaxSpace` (``random_projection``) and :class:`LandmarkSyntaxSpace`
  (``landmark_mds``, on the exact distance).  Euclidean distance there stands in for the
  pq-gram distance; notebook 03 measures how well, for each.  One point per program.
- :class:`SemanticSpace`: a program's outputs on the grid, optionally squashed (``asinh``
  tames values up to the value bound), z-scored per grid point, projected by PCA.  One
  point per semantic class: programs of a class share their outputs, hence their point.
  Out-of-bound programs have no outputs, so no semantic point: their coordinates are NaN.

Both are fitted once, on the universe, and then place any program in the same space:
a universe program (by the vectorised builders) and a new one, e.g. a model's output (one
tree at a time) get the same coordinates.  Their parameters are saved as plain ``.npz``
arrays (no pickle) and reload with :func:`load_syntax_space` / :meth:`SemanticSpace.load`.
:func:`write_spaces` writes a fitted pair and the universe's coordinates atomically, with
the same bytes for the same params.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize
from sklearn.random_projection import GaussianRandomProjection
from sklearn.utils.validation import check_is_fitted

from synthgen.atomic import atomic_path, write_text
from synthgen.seeding import derive_seed
from synthgen.grammar import Grammar, Program
from synthgen.pqgram import (
    NULL, PQProfiles, check_pq, gram_text, pq_intersections, program_profiles, universe_profiles,
)
from synthgen.universe import Universe

PROFILES_FILE = "pq_profiles.npz"
VOCABULARY_FILE = "pq_vocabulary.json"
SYNTAX_FILE = "syntax.npy"
SYNTAX_SPACE_FILE = "syntax_space.npz"
SEMANTICS_FILE = "semantics.npy"
SEMANTIC_SPACE_FILE = "semantic_space.npz"

# coordinates placed at a time, float64: 64 MB (2**18 programs of 32 dims), whatever the width
_CHUNK_VALUES = 1 << 23
# rows placed at a time by landmark MDS: their intersections with 1,000 landmarks (a quarter
# of the pairs share a gram) take about 12 bytes each, ~50 MB
_LANDMARK_CHUNK = 1 << 14


def _positive_int(name: str, value, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


# --- syntax -------------------------------------------------------------------------


class _ProfileSpace(TransformerMixin, BaseEstimator):
    """What every construction of the syntactic space shares: it reads pq-gram profiles
    and places each program by its own row alone, in chunks, so that a program gets the
    same bits whether it is placed alone or with twenty million others and no step holds
    more than a chunk's intermediate.

    ``fit`` and ``transform`` take a :class:`Universe` (its programs, by the vectorised
    builder), a sequence of :class:`Program` trees, or prebuilt :class:`PQProfiles`.
    Grams outside the fitted vocabulary (possible for programs larger than the
    universe's) are dropped by ``transform``.  A subclass names its ``embedding``, lists
    its ``_fitted`` arrays (saved as ``name``, held as ``name_``) and writes ``_fit``
    and ``_place`` (one chunk of count rows -> float64 coordinates)."""

    embedding: str
    _fitted: tuple[str, ...]

    def _validate(self) -> None:
        check_pq(self.p, self.q)
        _positive_int("dims", self.dims)
        _positive_int("random_state", self.random_state, low=0)

    def profiles(self, X) -> PQProfiles:
        """pq-gram counts of ``X``, on the fitted vocabulary once fitted."""
        return self._profiles(X, getattr(self, "vocabulary_", None))

    def _profiles(self, X, vocabulary) -> PQProfiles:
        if isinstance(X, PQProfiles):
            if (X.p, X.q) != (self.p, self.q):
                raise ValueError(f"profiles have p={X.p}, q={X.q}; this space uses p={self.p}, q={self.q}")
            profiles = X
        elif isinstance(X, Universe):
            profiles = universe_profiles(X, self.p, self.q)
        else:
            return program_profiles(_programs(X), self.p, self.q, vocabulary)
        return profiles if vocabulary is None else profiles.reindex(vocabulary)

    def fit(self, X, y=None):
        self._start_fit(self._profiles(X, None))  # a refit starts afresh, on the new data's grams
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        profiles = self._profiles(X, None)  # built once, used for both steps
        self._start_fit(profiles)
        return self._project(profiles.counts)

    def transform(self, X) -> np.ndarray:
        """Coordinates, float32, one row per program."""
        check_is_fitted(self, "vocabulary_")
        return self._project(self.profiles(X).counts)

    def _start_fit(self, profiles: PQProfiles) -> None:
        self._validate()
        n_grams = profiles.counts.shape[1]
        self.vocabulary_ = profiles.vocabulary
        self.n_features_in_ = n_grams
        self._fit(profiles)

    def _sample(self, counts: sp.csr_matrix, size: int | None) -> sp.csr_matrix:
        """``size`` rows drawn with ``random_state`` (all rows when ``None`` or fewer)."""
        rng = np.random.default_rng(self.random_state)
        if size is not None and size < counts.shape[0]:
            return counts[np.sort(rng.choice(counts.shape[0], size, replace=False))]
        return counts

    def _project(self, counts: sp.csr_matrix) -> np.ndarray:
        out = np.empty((counts.shape[0], self.dims), np.float32)
        chunk = max(1, _CHUNK_VALUES // self.dims)
        for start in range(0, counts.shape[0], chunk):
            out[start : start + chunk] = self._place(counts[start : start + chunk])
        return out

    # --- persistence ----------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        check_is_fitted(self, "vocabulary_")
        head = {"params": np.array(json.dumps(self.get_params(), sort_keys=True))}
        if self.embedding != SyntaxSpace.embedding:  # the paper's space keeps the file it always had
            head["embedding"] = np.array(self.embedding)
        _write_npz(
            path,
            {
                **head,
                "vocabulary": np.array(self.vocabulary_, dtype=str).reshape(len(self.vocabulary_), self.p + self.q),
                **{name: getattr(self, f"{name}_") for name in self._fitted},
            },
        )

    @classmethod
    def load(cls, path: str | Path):
        with np.load(path, allow_pickle=False) as f:
            space = cls(**json.loads(str(f["params"])))
            space.vocabulary_ = tuple(tuple(str(label) for label in row) for row in f["vocabulary"])
            for name in cls._fitted:
                setattr(space, f"{name}_", f[name])
        space.n_features_in_ = len(space.vocabulary_)
        space._restore()
        return space

    def _restore(self) -> None:
        """Rebuild what is derived from the saved arrays (nothing, unless overridden)."""


class SyntaxSpace(_ProfileSpace):
    """The paper's construction (``svd``): pq-gram counts -> truncated SVD to ``dims``.

    The SVD is fitted on ``fit_sample`` rows drawn with ``random_state`` (all rows when
    ``None`` or when there are fewer), for speed: on the default universe a sample of
    200,000 keeps the same share of all rows' variance as a fit on all two million
    (notebook 03).

    Fitted: ``vocabulary_`` (gram tuples, the columns), ``components_`` (float32,
    ``dims`` x grams), ``singular_values_``, ``explained_variance_ratio_`` (on the fit rows).
    """

    embedding = "svd"
    _fitted = ("components", "singular_values", "explained_variance_ratio")

    def __init__(self, p: int = 2, q: int = 3, dims: int = 32, fit_sample: int | None = 200_000, random_state: int = 0):
        self.p = p
        self.q = q
        self.dims = dims
        self.fit_sample = fit_sample
        self.random_state = random_state

    def _validate(self) -> None:
        super()._validate()
        if self.fit_sample is not None:
            _positive_int("fit_sample", self.fit_sample, low=self.dims)

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """The rows the SVD sees: raw counts here."""
        return counts

    def _fit(self, profiles: PQProfiles) -> None:
        rows = self._weigh_fit(self._sample(profiles.counts, self.fit_sample))
        axes = min(self.dims, *rows.shape)  # fewer only for a tiny grammar: see _zero_axes
        svd = TruncatedSVD(axes, algorithm="randomized", random_state=self.random_state)
        svd.fit(rows.astype(np.float32))
        # float32 from the start, so that a reloaded space computes exactly what this one does
        self.components_ = _zero_axes(svd.components_.astype(np.float32), self.dims)
        self.singular_values_ = _zero_axes(svd.singular_values_.astype(np.float64), self.dims)
        self.explained_variance_ratio_ = _zero_axes(svd.explained_variance_ratio_.astype(np.float64), self.dims)
        self._restore()

    def _weigh_fit(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        return self._weigh(counts)

    def _restore(self) -> None:
        self._basis = self.components_.T.astype(np.float64)

    def _place(self, counts: sp.csr_matrix) -> np.ndarray:
        # CSR times dense computes each row's product alone, whatever the chunk
        return self._weigh(counts) @ self._basis


class TfidfSyntaxSpace(SyntaxSpace):
    """``tfidf_svd``: pq-gram counts -> sublinear tf-idf (``1 + ln count``, times the
    gram's smoothed inverse document frequency), each row scaled to unit length -> SVD.

    The row scaling makes a small program as long as a large one, as the pq-gram distance
    divides by the profiles' sizes; the idf keeps the commonest grams (a leaf under
    ``add``) from filling the leading axes.  The idf is learnt on the same ``fit_sample``
    rows as the SVD (scikit-learn's ``TfidfTransformer``).  Fitted: as :class:`SyntaxSpace`,
    plus ``idf_``."""

    embedding = "tfidf_svd"
    _fitted = SyntaxSpace._fitted + ("idf",)

    def _weigh_fit(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        self.idf_ = TfidfTransformer(sublinear_tf=True).fit(counts).idf_.astype(np.float64)
        return self._weigh(counts)

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        tfidf = TfidfTransformer(sublinear_tf=True)
        tfidf.idf_, tfidf.n_features_in_ = self.idf_, len(self.idf_)
        return tfidf.transform(counts.astype(np.float64))


class ProjectionSyntaxSpace(_ProfileSpace):
    """``random_projection``: each profile divided by its size (L1), then a Gaussian
    random projection (Johnson-Lindenstrauss) to ``dims``.

    Why: the pq-gram distance is an L1 distance between profiles divided by their sizes
    (``|a - b|_1 / (|a| + |b|)``), and the programs nearest to each other differ in a few
    grams, each in its own direction of a flat spectrum.  An SVD keeps the 32 directions of
    most variance and drops most such differences; a random projection keeps a random
    shadow of every difference, shrunk by about the same factor.  Nothing is learnt from the
    data but the vocabulary.  Fitted: ``components_`` (float32, ``dims`` x grams)."""

    embedding = "random_projection"
    _fitted = ("components",)

    def __init__(self, p: int = 2, q: int = 3, dims: int = 32, random_state: int = 0):
        self.p = p
        self.q = q
        self.dims = dims
        self.random_state = random_state

    def _fit(self, profiles: PQProfiles) -> None:
        projection = GaussianRandomProjection(self.dims, random_state=self.random_state)
        projection.fit(profiles.counts[:1])  # reads only the number of grams
        self.components_ = projection.components_.astype(np.float32)
        self._restore()

    def _restore(self) -> None:
        self._basis = self.components_.T.astype(np.float64)

    def _place(self, counts: sp.csr_matrix) -> np.ndarray:
        return normalize(counts.astype(np.float64), norm="l1") @ self._basis


class LandmarkSyntaxSpace(_ProfileSpace):
    """``landmark_mds``: landmark (Nystrom) MDS on the exact pq-gram distance.

    ``landmarks`` programs, drawn with ``random_state``, are placed by classical MDS of
    their exact distances; every program is then placed by its exact distances to the
    landmarks alone (de Silva and Tenenbaum 2004): ``x = -1/2 P' (d^2 - mean_d^2)``.

    The distance embedded is ``sqrt(1 - J)``, J the weighted Jaccard similarity of the
    two profiles: it is a monotone function of the pq-gram distance
    (:func:`~synthgen.pqgram.pq_distance_of_jaccard` maps back), and, unlike the pq-gram
    distance itself, Euclidean (the min/max kernel J is positive definite), so with all
    axes kept the landmarks' distances are reproduced exactly.  ``1 - J`` is 1 for a pair
    that shares no gram, so ``x = 1/2 P' J + c``: only the sparse sharing pairs are
    computed, one chunk of programs at a time.

    Fitted: the landmarks' profiles as CSR arrays (``landmark_data_``,
    ``landmark_indices_``, ``landmark_indptr_``), ``projection_`` (landmarks x ``dims``,
    ``P / 2``), ``offset_`` (``c``), ``eigenvalues_`` (the MDS spectrum of the landmarks,
    all of it, largest first)."""

    embedding = "landmark_mds"
    _fitted = ("landmark_data", "landmark_indices", "landmark_indptr", "projection", "offset", "eigenvalues")

    def __init__(self, p: int = 2, q: int = 3, dims: int = 32, landmarks: int = 1000, random_state: int = 0):
        self.p = p
        self.q = q
        self.dims = dims
        self.landmarks = landmarks
        self.random_state = random_state

    def _validate(self) -> None:
        super()._validate()
        _positive_int("landmarks", self.landmarks, low=self.dims + 1)

    def _fit(self, profiles: PQProfiles) -> None:
        counts = profiles.counts
        if counts.shape[0] < self.landmarks:
            raise ValueError(f"landmarks ({self.landmarks}) exceeds the {counts.shape[0]} programs to draw them from")
        landmark_counts = self._sample(counts, self.landmarks)
        self.landmark_data_, self.landmark_indices_ = landmark_counts.data.copy(), landmark_counts.indices.copy()
        self.landmark_indptr_ = landmark_counts.indptr.astype(np.int64)
        self._restore()
        squared = 1.0 - self._jaccard(landmark_counts).toarray()  # (1 - J) between landmarks
        # classical MDS: double centring, then the leading eigenvectors
        centred = squared - squared.mean(axis=0) - squared.mean(axis=1)[:, None] + squared.mean()
        eigenvalues, vectors = np.linalg.eigh(-0.5 * centred)
        order = np.argsort(eigenvalues, kind="stable")[::-1]
        eigenvalues, vectors = eigenvalues[order], vectors[:, order]
        positive = int(np.count_nonzero(eigenvalues > 1e-9 * eigenvalues[0]))
        if positive < self.dims:
            raise ValueError(f"the landmarks' distances span only {positive} axes; dims ({self.dims}) must not exceed it: "
                             "add landmarks or lower dims")
        # eigh fixes each eigenvector only up to sign: make the largest entry positive
        vectors = vectors[:, : self.dims]
        vectors *= np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(self.dims)])
        half = vectors / np.sqrt(eigenvalues[: self.dims]) / 2
        self.projection_ = half
        self.offset_ = -(1.0 - squared.mean(axis=0)) @ half
        self.eigenvalues_ = eigenvalues
        self._restore()

    def _restore(self) -> None:
        self._landmark_counts = sp.csr_matrix(
            (self.landmark_data_, self.landmark_indices_, self.landmark_indptr_),
            shape=(len(self.landmark_indptr_) - 1, len(self.vocabulary_)),
        )
        self._landmark_sizes = np.asarray(self._landmark_counts.sum(axis=1), dtype=np.float64).ravel()

    def _jaccard(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Weighted Jaccard similarity of each row to each landmark, stored where > 0."""
        shared = pq_intersections(counts, self._landmark_counts)
        sizes = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
        common = shared.data.astype(np.float64)
        union = np.repeat(sizes, np.diff(shared.indptr)) + self._landmark_sizes[shared.indices] - common
        return sp.csr_matrix((common / union, shared.indices, shared.indptr), shape=shared.shape)

    def _place(self, counts: sp.csr_matrix) -> np.ndarray:
        out = np.empty((counts.shape[0], self.dims))
        # the sparse intersections of a chunk hold ~ a quarter of chunk x landmarks entries
        for start in range(0, counts.shape[0], _LANDMARK_CHUNK):
            out[start : start + _LANDMARK_CHUNK] = self._jaccard(counts[start : start + _LANDMARK_CHUNK]) @ self.projection_
        return out + self.offset_


# The constructions by name: params' syntax.embedding picks one (synthgen.params lists the names).
SYNTAX_SPACES: dict[str, type[_ProfileSpace]] = {
    cls.embedding: cls for cls in (SyntaxSpace, TfidfSyntaxSpace, ProjectionSyntaxSpace, LandmarkSyntaxSpace)
}


def syntax_space(params, random_state: int) -> _ProfileSpace:
    """The syntactic space ``params`` (the ``syntax`` section) names, unfitted."""
    cls = SYNTAX_SPACES[params.embedding]
    knobs = {"p": params.p, "q": params.q, "dims": params.dims, "fit_sample": params.fit_sample,
             "landmarks": params.landmarks, "random_state": random_state}
    return cls(**{name: knobs[name] for name in cls._get_param_names()})


def syntax_seed(seed: int) -> int:
    """The syntactic space's ``random_state``, from the study's root seed: its one source."""
    return derive_seed(seed, "spaces-syntax", bits=32)


@dataclass
class Spaces:
    """Both spaces of a universe, as the spaces stage builds and writes them."""

    profiles: PQProfiles
    syntax: _ProfileSpace
    syntax_coords: np.ndarray  # (n_programs, syntax.dims) float32
    semantics: "SemanticSpace"
    semantic_coords: np.ndarray  # (n_classes, semantics.dims) float32

    def write(self, folder: str | Path) -> None:
        write_spaces(folder, self.profiles, self.syntax, self.syntax_coords, self.semantics, self.semantic_coords)


def build_spaces(universe: Universe, params) -> Spaces:
    """The pq-gram profiles and both spaces of ``universe`` configured by ``params`` (the
    whole :class:`~synthgen.params.Params`): the recipe of the spaces stage, seed included."""
    profiles = universe_profiles(universe, params.syntax.p, params.syntax.q)
    syntax = syntax_space(params.syntax, random_state=syntax_seed(params.seed))
    syntax_coords = syntax.fit_transform(profiles)
    semantics = SemanticSpace(params.semantics.dims, params.semantics.transform).fit(universe)
    return Spaces(profiles, syntax, syntax_coords, semantics, semantics.transform(universe).astype(np.float32))


def load_syntax_space(path: str | Path) -> _ProfileSpace:
    """A saved syntactic space of any construction."""
    with np.load(path, allow_pickle=False) as f:
        embedding = str(f["embedding"]) if "embedding" in f.files else SyntaxSpace.embedding
    return SYNTAX_SPACES[embedding].load(path)


def leading_grams(space: SyntaxSpace, axes: int, top: int) -> pd.DataFrame:
    """The ``top`` grams of largest absolute loading on each of the first ``axes`` axes:
    what moving along an axis changes in a program's profile."""
    rows = []
    for axis in range(min(axes, space.dims)):
        loading = space.components_[axis]
        for rank, j in enumerate(np.argsort(-np.abs(loading), kind="stable")[:top]):
            rows.append({"axis": axis + 1, "rank": rank + 1, "gram": gram_text(space.vocabulary_[j], space.p), "loading": float(loading[j])})
    return pd.DataFrame(rows)


# --- semantics ----------------------------------------------------------------------

_TRANSFORMS = {"asinh": np.arcsinh, "none": lambda v: v}


class SemanticSpace(TransformerMixin, BaseEstimator):
    """Outputs on the grid -> ``output_transform`` -> z-score per grid point -> PCA.

    ``fit`` takes a :class:`Universe` (one row per semantic class: every distinct
    behaviour counts once, however many programs share it) or an array of outputs,
    shape (n, n_points).  ``transform`` takes the same, or a sequence of
    :class:`Program` trees, which it evaluates on the grammar's grid (known when fitted on
    a universe).  A row with no outputs (NaN, or a program out of bound) gets NaN
    coordinates.  A grid point where every fitted output agrees carries no information
    and is left unscaled rather than divided by zero.

    Fitted: ``mean_``, ``scale_`` (per grid point, after the transform), ``components_``
    (``dims`` x points), ``pca_mean_``, ``explained_variance_ratio_``, and ``grammar_``
    (``None`` when fitted on a bare array).
    """

    def __init__(self, dims: int = 32, output_transform: str = "asinh"):
        self.dims = dims
        self.output_transform = output_transform

    def fit(self, X, y=None) -> "SemanticSpace":
        _positive_int("dims", self.dims)
        if self.output_transform not in _TRANSFORMS:
            raise ValueError(f"output_transform must be one of {', '.join(_TRANSFORMS)}, got {self.output_transform!r}")
        self.grammar_ = X.grammar if isinstance(X, Universe) else None
        values = self._squashed(self._outputs(X))
        if np.isnan(values).any():
            raise ValueError("cannot fit on rows without outputs (NaN)")
        n_rows, n_points = values.shape
        if not self.dims <= n_points:
            raise ValueError(f"dims ({self.dims}) must not exceed the {n_points} grid points")
        self.mean_ = values.mean(axis=0)
        std = values.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        z = (values - self.mean_) / self.scale_
        axes = min(self.dims, n_rows - 1)  # centred rows span at most n_rows - 1 directions: see _zero_axes
        if axes >= 1:
            pca = PCA(axes, svd_solver="full").fit(z)
            self.pca_mean_, components, ratio = pca.mean_, pca.components_, pca.explained_variance_ratio_
        else:  # one class: every program computes the same function, a space of one point
            self.pca_mean_, components, ratio = z.mean(axis=0), np.empty((0, n_points)), np.empty(0)
        self.components_ = _zero_axes(components, self.dims)
        self.explained_variance_ratio_ = _zero_axes(ratio, self.dims)
        self.n_features_in_ = n_points
        return self

    def transform(self, X) -> np.ndarray:
        """Coordinates, float32: per class for a universe, else per row or program."""
        check_is_fitted(self, "components_")
        z = (self._squashed(self._outputs(X)) - self.mean_) / self.scale_ - self.pca_mean_
        # einsum's own loops, not BLAS: BLAS may take another kernel for one row than for
        # many, and a program must get the same bits alone as among its whole universe.
        return np.einsum("ij,kj->ik", z, self.components_).astype(np.float32)

    def _squashed(self, outputs: np.ndarray) -> np.ndarray:
        return _TRANSFORMS[self.output_transform](outputs)

    def _outputs(self, X) -> np.ndarray:
        if isinstance(X, Universe):
            return X.class_outputs.astype(np.float64)
        if isinstance(X, np.ndarray) and X.ndim == 2:
            return X.astype(np.float64)
        if self.grammar_ is None:
            raise ValueError("this space was fitted on bare outputs: it knows no grid to evaluate programs on")
        rows = np.full((len(X), self.grammar_.n_points), np.nan)
        for k, program in enumerate(_programs(X)):
            values = self.grammar_.evaluate(program)
            if values is not None:  # None: out of bound, no semantic point
                rows[k] = values
        return rows

    # --- persistence ----------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        check_is_fitted(self, "components_")
        grammar = None if self.grammar_ is None else self.grammar_.to_dict()
        _write_npz(
            path,
            {
                "params": np.array(json.dumps(self.get_params(), sort_keys=True)),
                "grammar": np.array(json.dumps(grammar, sort_keys=True)),
                "mean": self.mean_,
                "scale": self.scale_,
                "pca_mean": self.pca_mean_,
                "components": self.components_,
                "explained_variance_ratio": self.explained_variance_ratio_,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> "SemanticSpace":
        with np.load(path, allow_pickle=False) as f:
            space = cls(**json.loads(str(f["params"])))
            grammar = json.loads(str(f["grammar"]))
            space.grammar_ = None if grammar is None else Grammar.from_dict(grammar)
            space.mean_, space.scale_, space.pca_mean_ = f["mean"], f["scale"], f["pca_mean"]
            space.components_ = f["components"]
            space.explained_variance_ratio_ = f["explained_variance_ratio"]
        space.n_features_in_ = len(space.mean_)
        return space


def _zero_axes(fitted: np.ndarray, dims: int) -> np.ndarray:
    """``fitted`` (per axis along its first dimension) completed with zeros to ``dims`` axes.

    A tiny grammar's universe can have fewer distinct pq-grams, or fewer semantic classes,
    than the space has dimensions; that cannot be known from params before enumeration.
    The fit then takes every direction the data has, and the remaining axes are zero for
    every program: a space of the configured shape whose distances are those of the
    directions that exist."""
    missing = dims - fitted.shape[0]
    if missing <= 0:
        return fitted
    return np.concatenate([fitted, np.zeros((missing, *fitted.shape[1:]), fitted.dtype)])


def program_semantics(universe: Universe, class_coords: np.ndarray) -> np.ndarray:
    """Semantic coordinates per program: its class's point, NaN for out-of-bound ones."""
    out = class_coords[np.maximum(universe.semantic_class, 0)]
    out[universe.semantic_class < 0] = np.nan
    return out


def _programs(X) -> Sequence[Program]:
    programs = list(X)
    if not all(isinstance(p, Program) for p in programs):
        raise TypeError("expected a Universe, PQProfiles, an outputs array or a sequence of Program trees")
    return programs


# --- artifacts ----------------------------------------------------------------------


def write_spaces(
    folder: str | Path,
    profiles: PQProfiles,
    syntax: _ProfileSpace,
    syntax_coords: np.ndarray,
    semantics: SemanticSpace,
    semantic_coords: np.ndarray,
) -> None:
    """Write the spaces of a universe: the pq-gram count matrix (scipy ``load_npz``
    format) and its column vocabulary, each space's parameters, and the coordinates
    (``syntax.npy`` per program, ``semantics.npy`` per class).  Every file is written
    atomically; the same inputs give the same bytes."""
    folder = Path(folder)
    counts = profiles.counts
    _write_npz(
        folder / PROFILES_FILE,
        {
            "format": np.array("csr"),
            "shape": np.array(counts.shape, dtype=np.int64),
            "data": counts.data,
            "indices": counts.indices,
            "indptr": counts.indptr,
        },
        compress=True,
    )
    # one gram per line: readable, and small enough (indent=2 would put each label on a line)
    grams = ",\n".join(json.dumps(list(g)) for g in profiles.vocabulary)
    header = json.dumps({"p": profiles.p, "q": profiles.q, "null": NULL})[:-1]
    write_text(folder / VOCABULARY_FILE, f'{header}, "grams": [\n{grams}\n]}}\n')
    syntax.save(folder / SYNTAX_SPACE_FILE)
    semantics.save(folder / SEMANTIC_SPACE_FILE)
    for name, coords in ((SYNTAX_FILE, syntax_coords), (SEMANTICS_FILE, semantic_coords)):
        with atomic_path(folder / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(coords, dtype=np.float32))


def read_profiles(folder: str | Path) -> PQProfiles:
    folder = Path(folder)
    meta = json.loads((folder / VOCABULARY_FILE).read_text())
    counts = sp.load_npz(folder / PROFILES_FILE).tocsr()
    return PQProfiles(counts, tuple(tuple(g) for g in meta["grams"]), meta["p"], meta["q"])


def _write_npz(path: str | Path, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    """``np.savez`` with a fixed timestamp on every member, so equal arrays give equal
    bytes (``np.savez`` stamps the current time), written atomically.  Arrays are never
    pickled.  Compression is deflate level 1: on the default universe's count matrix it
    gives 252 MB -> 17 MB in under a second, where level 6 saves 4 MB more in 4 s."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            zf.writestr(info, buffer.getbuffer(), compress_type=method, compresslevel=1 if compress else None)
