"""The ``synthgen`` command line.

    synthgen profile NAME     make NAME (smoke, default, paper) the active params.yaml
    synthgen check-params     validate params.yaml, and for a small universe check that its splits
                              can be drawn; exit 2 with one line if not
    synthgen release build|check   write data/ (the released benchmark) or check it reproduces
    synthgen score SPLIT FILE [--data DIR] [--notation auto|prefix|infix] [--json OUT]
                              score predicted programs on a released split
    synthgen results [--metrics DIR] [--seed-set DIR ...] [--json]
                              the verdicts, the floor and pass@1 per split, read off reports/metrics/
"""

from __future__ import annotations

import argparse
import sys

from synthgen.params import ParamsError, load_params
from synthgen.paths import repo_root
from synthgen.profiles import available_profiles, use_profile


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # these two have their own command lines (python -m synthgen.release / synthgen.score)
    if argv and argv[0] == "release":
        from synthgen.release import main as release_main

        return release_main(argv[1:])
    if argv and argv[0] == "score":
        from synthgen.score import main as score_main

        return score_main(argv[1:])
    if argv and argv[0] == "results":
        from synthgen.results_table import main as results_main

        try:
            return results_main(argv[1:])
        except (ParamsError, FileNotFoundError) as err:
            print(f"synthgen: {err}", file=sys.stderr)
            return 2
    parser = argparse.ArgumentParser(prog="synthgen", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("profile", help="make a profile the active params.yaml")
    p.add_argument("name", help="smoke, default or paper")
    sub.add_parser("check-params", help="validate params.yaml")
    sub.add_parser("release", help="build|check: write data/ from artifacts/, or check a rebuild matches data.dvc")
    sub.add_parser("score", help="SPLIT FILE: score predicted programs on a released split (--help for more)")
    sub.add_parser("results", help="the verdicts and pass@1 per split from reports/metrics/ (--help for more)")
    args = parser.parse_args(argv)
    try:
        root = repo_root()
        if args.command == "profile":
            print(use_profile(root, args.name))
        elif args.command == "check-params":
            from synthgen.feasibility import check_feasible

            built = check_feasible(load_params(root / "params.yaml"))
            how = "its splits drawn in memory" if built else "the universe is large: checked analytically"
            print(f"params.yaml is valid ({how}; profiles available: {', '.join(available_profiles(root))})")
    except (ParamsError, FileNotFoundError) as err:
        print(f"synthgen: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
