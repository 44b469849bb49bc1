"""Reliability, measured rather than assumed: the three figures of
docs/reliability.md, each from one subcommand that prints a table and exits 1 when the
figure falls short.

    python benchmarks/reliability.py parsers   [--sequences 100000] [--infix 10000] [--seed 0]
    python benchmarks/reliability.py training  [--kills 5] [--seed 0]
    python benchmarks/reliability.py reproduce [--target splits]

- ``parsers``: fuzzed token sequences through :func:`parse_prefix` and fuzzed strings
  through :func:`parse_infix` (random, mutated, valid, deep and ill-typed inputs): no
  exception may escape, every program parsed must print back to its input, every error
  must be of a documented kind.
- ``training``: the smoke profile's training (a tiny model) in a subprocess, killed with
  SIGKILL at random points and resumed each time; every kill may lose at most one
  checkpoint interval, and the finished run must write byte for byte the model and curve
  of an uninterrupted run.
- ``reproduce``: two fresh copies of the working tree, each ``synthgen profile smoke``,
  ``dvc repro`` and ``python -m synthgen.release build``; their ``data/`` must be
  byte-identical.  ``--target splits`` stops ``dvc repro`` at the stages ``data/`` reads.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing  # noqa: E402

from synthgen.grammar import Grammar, ParseError, Program, parse_infix, parse_prefix  # noqa: E402
from synthgen.params import Params, validate_params  # noqa: E402
from synthgen.profiles import profile_text  # noqa: E402

ERROR_KINDS = {"empty", "unknown_token", "incomplete", "trailing", "syntax", "too_deep"}


def smoke_params(**sections) -> Params:
    """The smoke profile with some sections' keys replaced."""
    raw = yaml.safe_load(profile_text(ROOT, "smoke"))
    for section, values in sections.items():
        raw[section].update(values)
    return validate_params(raw, source="smoke")


# --- (a) parsers ----------------------------------------------------------------------

JUNK_TOKENS = ["(", ")", ",", "-", "+", "*", "//", "%", "", "zz", "-0", "01", "²", "١", "−1", "💥", "\x00", "neg(",
               "x y", "1e3", "NaN", "9" * 60, "-" * 3]
JUNK_CHARS = list("xyz0123456789 ()+-*/%,abdegilmnosux_\t\n") + ["²", "١", "−", "💥", "\x00", "é", "-²", "- ١"]


def random_program(g: Grammar, rng: np.random.Generator, max_size: int) -> list[str]:
    """Prefix tokens of a random program of at most ``max_size`` nodes.  ``room`` is how
    many nodes may still be added beyond one leaf per open slot; a symbol of arity ``a``
    uses ``a`` of it, so a leaf always fits."""
    tokens, need = [], 1
    while need:
        room = max_size - len(tokens) - need
        allowed = [s for s in g.symbols if g.arity(s) <= room]
        symbol = allowed[rng.integers(len(allowed))]
        tokens.append(symbol)
        need += g.arity(symbol) - 1
    return tokens


def mutate(items: list, vocabulary: list, rng: np.random.Generator) -> list:
    """One to three edits: delete, insert, replace or swap an item."""
    items = list(items)
    for _ in range(rng.integers(1, 4)):
        edit, at = rng.integers(4), int(rng.integers(len(items) + 1))
        if edit == 0 and items:
            del items[min(at, len(items) - 1)]
        elif edit == 1:
            items.insert(at, vocabulary[rng.integers(len(vocabulary))])
        elif edit == 2 and items:
            items[min(at, len(items) - 1)] = vocabulary[rng.integers(len(vocabulary))]
        elif len(items) > 1:
            i = min(at, len(items) - 2)
            items[i], items[i + 1] = items[i + 1], items[i]
    return items


def deep_layers(g: Grammar, rng: np.random.Generator) -> list[str]:
    """Operators of a chain up to 20,000 levels deep, outermost first."""
    ops = list(g.unary + g.binary)
    return [ops[i] for i in rng.integers(len(ops), size=int(rng.integers(1, 20_001)))]


def deep_tokens(g: Grammar, rng: np.random.Generator) -> list[str]:
    """A deep chain in prefix: unary operators, and binary ones whose left operand is a leaf.
    Written directly, not by the printer under test."""
    tokens = []
    for op in deep_layers(g, rng):
        tokens += [op] if g.arity(op) == 1 else [op, g.leaves[0]]
    return tokens + [g.leaves[-1]]


def deep_infix(g: Grammar, rng: np.random.Generator) -> str:
    """The same chains in infix, nested on the right: ``-(``, ``abs(``, ``x + (``, ``min(x, ``."""
    symbol = {"add": "+", "sub": "-", "mul": "*", "div": "//", "mod": "%"}
    first, last = (f"({c})" if c.startswith("-") else c for c in (g.leaves[0], g.leaves[-1]))
    opening = {op: "-(" if op == "neg" else f"{first} {symbol[op]} (" if op in symbol else
               f"{op}(" if g.arity(op) == 1 else f"{op}({first}, " for op in g.unary + g.binary}
    layers = deep_layers(g, rng)
    return "".join(opening[op] for op in layers) + last + ")" * len(layers)


def prefix_inputs(g: Grammar, n: int, rng: np.random.Generator):
    """(kind, input) pairs: token lists and strings for parse_prefix."""
    vocabulary = list(g.symbols) + JUNK_TOKENS
    kinds = ["random", "mutated", "valid", "ill-typed", "deep"]
    share = [0.35, 0.35, 0.25, 0.048, 0.002]  # deep ones are long: a few hundred of them
    for kind in rng.choice(kinds, size=n, p=share):
        if kind == "random":
            tokens = [vocabulary[i] for i in rng.integers(len(vocabulary), size=rng.integers(0, 30))]
        elif kind == "mutated":
            tokens = mutate(random_program(g, rng, 15), vocabulary, rng)
        elif kind == "valid":
            tokens = random_program(g, rng, 15)
        elif kind == "deep":
            tokens = deep_tokens(g, rng)
        else:  # not a string, nor a sequence of strings
            yield kind, [None, 1, b"x", 2.5, [None], [1], [b"x"], [2.5], [["x"]], ["x", 1]][rng.integers(10)]
            continue
        yield kind, (" ".join(tokens) if rng.integers(2) else tokens)


def infix_inputs(g: Grammar, n: int, rng: np.random.Generator):
    kinds = ["random", "mutated", "valid", "deep"]
    for kind in rng.choice(kinds, size=n, p=[0.35, 0.35, 0.295, 0.005]):
        if kind == "random":
            yield kind, "".join(JUNK_CHARS[i] for i in rng.integers(len(JUNK_CHARS), size=rng.integers(0, 40)))
        elif kind == "deep":
            yield kind, deep_infix(g, rng)
        else:
            text = parse_prefix(random_program(g, rng, 15), g).infix()
            yield kind, text if kind == "valid" else "".join(mutate(list(text), JUNK_CHARS, rng))


def check_prefix(result, text, g: Grammar) -> bool:
    """A program prints back to its tokens; an error is of a documented kind."""
    if isinstance(result, Program):
        return result.tokens() == (text.split() if isinstance(text, str) else list(text))
    return isinstance(result, ParseError) and result.kind in ERROR_KINDS


def check_infix(result, text, g: Grammar) -> bool:
    if isinstance(result, Program):
        return parse_infix(result.infix(), g) == result
    return isinstance(result, ParseError) and result.kind in ERROR_KINDS


def fuzz(parser, check, inputs, g: Grammar) -> pd.DataFrame:
    rows = []
    for kind, text in inputs:
        row = {"input": kind, "programs": 0, "parse errors": 0, "exceptions": 0, "wrong": 0}
        try:
            result = parser(text, g)
        except Exception as err:  # noqa: BLE001 -- the figure counts every escape
            row["exceptions"] = 1
            print(f"  exception {type(err).__name__}: {err!r} on {str(text)[:80]!r}")
        else:
            row["programs" if isinstance(result, Program) else "parse errors"] = 1
            row["wrong"] = int(not check(result, text, g))
        rows.append(row)
    return pd.DataFrame(rows).groupby("input").agg(
        inputs=("programs", "size"), programs=("programs", "sum"), **{"parse errors": ("parse errors", "sum")},
        exceptions=("exceptions", "sum"), wrong=("wrong", "sum"))


def measure_parsers(args) -> bool:
    # the smoke grammar, and one with negative constants and without neg (other branches)
    grammars = [Grammar.from_params(smoke_params().grammar),
                Grammar(("x", "y"), (-1, 0, 2), ("abs",), ("add", "min", "mod"), 5, -3, 3, 10**6)]
    ok = True
    for name, parser, check, n, make in (("parse_prefix", parse_prefix, check_prefix, args.sequences, prefix_inputs),
                                         ("parse_infix", parse_infix, check_infix, args.infix, infix_inputs)):
        rng = np.random.default_rng([args.seed, len(name)])
        t = time.perf_counter()
        parts = [fuzz(parser, check, make(g, n // len(grammars) + (k < n % len(grammars)), rng), g)
                 for k, g in enumerate(grammars)]
        table = pd.concat(parts).groupby(level=0).sum()
        table.loc["all"] = table.sum()
        print(f"\n{name}: {n:,} fuzzed inputs over {len(grammars)} grammars, seed {args.seed} "
              f"({time.perf_counter() - t:.0f} s)")
        print(table.to_string())
        ok &= table.loc["all", "exceptions"] == 0 and table.loc["all", "wrong"] == 0
    return bool(ok)


# --- (b) training, killed and resumed ---------------------------------------------------


def training_params() -> Params:
    """The smoke profile's training, on a tiny model and a grammar of 1,300 programs."""
    return smoke_params(
        grammar={"max_size": 4},
        model={"encoder_layers": 1, "decoder_layers": 1, "width": 16, "heads": 2},
        training={"tasks": 160 * 16, "batch_size": 16, "checkpoint_every": 20, "log_every": 5, "threads": 1},
    )


def train_worker(out_dir: str) -> None:
    """The run that gets killed: prints each finished step, flushed, for the parent."""
    from synthgen.enumeration import enumerate_universe
    from synthgen.seeding import rng_for
    from synthgen.training import train

    P = training_params()
    universe = enumerate_universe(Grammar.from_params(P.grammar))
    valid = np.flatnonzero(universe.semantic_class >= 0)
    train_ids = np.sort(rng_for(P.seed, "reliability", "train").choice(valid, 400, replace=False))
    print("ready", flush=True)
    train(universe, train_ids, P, out_dir, progress=False, on_step=lambda s: print(f"step {s}", flush=True))


def run_worker(out_dir: Path, kill_after: int | None, delay: float) -> int:
    """Start a training process; SIGKILL it ``delay`` seconds after it reports step
    ``kill_after`` (None: let it finish).  Return the last step it finished."""
    proc = subprocess.Popen([sys.executable, __file__, "_train_worker", str(out_dir)], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    last, killed = -1, False
    for line in proc.stdout:  # after the kill, the lines it wrote during the delay
        if line.startswith("step "):
            last = int(line.split()[1])
            if kill_after is not None and last >= kill_after and not killed:
                time.sleep(delay)  # somewhere inside a later step, or a checkpoint being written
                proc.send_signal(signal.SIGKILL)
                killed = True
    proc.stdout.close()
    code = proc.wait()
    if kill_after is None and code != 0:
        raise RuntimeError(f"training worker failed with exit code {code}")
    return last


def checkpoint_step(out_dir: Path) -> int:
    import torch

    path = out_dir / "checkpoint.pt"
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"]) if path.exists() else 0


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def measure_training(args) -> bool:
    P = training_params()
    steps, interval = P.training.steps, P.training.checkpoint_every
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="synthgen-reliability-") as tmp:
        whole, killed = Path(tmp) / "whole", Path(tmp) / "killed"
        t = time.perf_counter()
        run_worker(whole, None, 0.0)
        step_time = (time.perf_counter() - t) / steps  # an upper bound: includes start-up
        rows = []
        # kill points spread over the whole run; each lies beyond the checkpoint the last one left
        for k, target in enumerate(np.sort(rng.choice(np.arange(1, steps - 1), args.kills, replace=False))):
            start = checkpoint_step(killed)
            reported = run_worker(killed, int(target), float(rng.uniform(0, 2 * step_time)))
            resumed_from = checkpoint_step(killed)
            rows.append({"kill": k + 1, "started at step": start, "killed after step": reported,
                         "checkpoint at step": resumed_from, "steps lost": reported - resumed_from})
        run_worker(killed, None, 0.0)
        same = {name: sha256(whole / name) == sha256(killed / name) for name in ("model.pt", "curve.tsv")}
    table = pd.DataFrame(rows).set_index("kill")
    print(f"\ntraining: {steps} steps, checkpoint every {interval}, killed {args.kills} times with SIGKILL "
          f"(seed {args.seed}), then run to the end")
    print(table.to_string())
    lost = int(table["steps lost"].max())
    print(f"most steps lost by one kill: {lost} (one checkpoint interval: {interval})")
    for name, equal in same.items():
        print(f"{name}: {'byte-identical to' if equal else 'DIFFERS from'} the uninterrupted run")
    return lost <= interval and all(same.values())


# --- (c) two fresh reproductions of data/ ----------------------------------------------


def fresh_copy(target: Path) -> None:
    """The working tree's files (tracked and new, not ignored), with no pipeline state."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split("\n")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target / rel)
    for rel in ("dvc.lock", "data.dvc", "reports"):  # start from nothing, as a fresh clone would
        path = target / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)


def reproduce(copy: Path, target: str | None) -> float:
    """profile smoke, dvc repro, release build in ``copy``; seconds taken."""
    # The copy's own package first on the path, so its notebooks run its code.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(copy), DVC_NO_ANALYTICS="1")
    env.pop("SYNTHGEN_ROOT", None)
    t = time.perf_counter()
    for command in ([sys.executable, "-m", "synthgen.cli", "profile", "smoke"],
                    ["dvc", "repro", *([target] if target else [])],
                    [sys.executable, "-m", "synthgen.release", "build"]):
        print(f"  {copy.name}: {' '.join(Path(c).name if c == sys.executable else c for c in command)}", flush=True)
        proc = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed in {copy}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    where = subprocess.run([sys.executable, "-c", "import synthgen; print(synthgen.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(copy.resolve()):
        raise RuntimeError(f"{copy} imported synthgen from {where}, not from the copy")
    return time.perf_counter() - t


def file_hashes(data: Path) -> dict[str, str]:
    return {p.relative_to(data).as_posix(): sha256(p) for p in sorted(data.rglob("*")) if p.is_file()}


def measure_reproduction(args) -> bool:
    from synthgen.release import dvc_dir_md5

    with tempfile.TemporaryDirectory(prefix="synthgen-reproduce-") as tmp:
        copies = [Path(tmp) / name for name in ("first", "second")]
        for copy in copies:  # both before either runs: an edit meanwhile must not split them
            fresh_copy(copy)
        hashes, rows = [], []
        for copy in copies:
            name = copy.name
            seconds = reproduce(copy, args.target)
            hashes.append(file_hashes(copy / "data"))
            rows.append({"copy": name, "files": len(hashes[-1]), "data/ (dvc md5)": dvc_dir_md5(copy / "data"),
                         "minutes": round(seconds / 60, 1)})
    table = pd.DataFrame(rows).set_index("copy")
    differ = sorted(f for f in hashes[0].keys() | hashes[1].keys() if hashes[0].get(f) != hashes[1].get(f))
    print(f"\nreproduce: smoke profile, dvc repro{' ' + args.target if args.target else ''}, release build, "
          f"in two fresh copies of {ROOT}")
    print(table.to_string())
    print("data/: byte-identical" if not differ else f"data/: {len(differ)} file(s) differ: {', '.join(differ)}")
    return not differ and len(hashes[0]) > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parsers", help="fuzzed inputs through both parsers")
    p.add_argument("--sequences", type=int, default=100_000)
    p.add_argument("--infix", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("training", help="training killed at random points and resumed")
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("reproduce", help="two fresh reproductions of data/ (smoke profile)")
    p.add_argument("--target", default=None, help="a dvc.yaml stage to stop at (default: the whole pipeline)")
    p = sub.add_parser("_train_worker")
    p.add_argument("out_dir")
    args = parser.parse_args(argv)
    if args.command == "_train_worker":
        train_worker(args.out_dir)
        return 0
    measure = {"parsers": measure_parsers, "training": measure_training, "reproduce": measure_reproduction}
    return 0 if measure[args.command](args) else 1


if __name__ == "__main__":
    sys.exit(main())
