"""Run a numbered notebook as a pipeline stage: ``python -m synthgen.notebook 02_enumeration``.

What a stage does, in order:

1. validate ``params.yaml`` (and any ``--set`` overrides): a bad value stops here with one
   line naming the key, before any work and before any file is written;
2. execute ``notebooks/NAME.ipynb`` with papermill, with ``notebooks/`` as working
   directory (as in JupyterLab), streaming the notebook's output (progress bars) here;
   the kernel talks to papermill over Unix sockets in a temporary folder;
3. move the executed copy to ``reports/notebooks/NAME.ipynb`` atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml

from synthgen.params import ParamsError, load_params
from synthgen.paths import repo_root


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ParamsError(f"--set {item}: expected key=value")
        out[key] = yaml.safe_load(value)
    return out


def _unix_sockets() -> bool:
    """Whether ZeroMQ's ipc transport (Unix domain sockets) is there: not on Windows."""
    return os.name != "nt"


def _kernel_manager(sockets: Path) -> type:
    """The kernel manager papermill starts the stage's kernel with: where Unix sockets exist
    (not on Windows), the kernel talks to papermill over sockets in ``sockets``, a folder of
    this run's own, rather than in plain text over TCP ports on localhost (of which
    ipykernel warns at every start: "Kernel is running over TCP without encryption").
    The folder goes with the run."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class KernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc" if _unix_sockets() else "tcp"

        @default("ip")
        def _default_ip(self) -> str:
            return str(sockets / "kernel") if self.transport == "ipc" else super()._ip_default()

    return KernelManager


def run(
    name: str,
    overrides: dict | None = None,
    kernel: str | None = None,
    parameters: dict | None = None,
    output: str | None = None,
) -> None:
    """Execute ``notebooks/<name>.ipynb`` into ``reports/notebooks/<output or name>.ipynb``;
    ``parameters`` are notebook variables (e.g. the split a training notebook trains on)."""
    root = repo_root()
    overrides = overrides or {}
    load_params(root / "params.yaml", overrides)  # fail fast, in one line
    source = root / "notebooks" / f"{name}.ipynb"
    if not source.is_file():
        raise FileNotFoundError(f"no notebook {source.relative_to(root)}")
    target = root / "reports" / "notebooks" / f"{output or name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)

    # jsonschema (which papermill's nbformat imports) builds a grammar for its optional
    # "iri" format checker when rfc3987_syntax is installed (JupyterLab pulls it in):
    # a second of CPU in every stage, for a format no notebook uses
    # (python-jsonschema/jsonschema#1428).  Without it, jsonschema skips that checker.
    sys.modules.setdefault("rfc3987_syntax", None)
    import papermill

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".ipynb", dir=target.parent)
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory(prefix="synthgen-kernel-") as sockets:
            papermill.execute_notebook(
                str(source),
                tmp,
                parameters={"params_path": str(root / "params.yaml"), "overrides": overrides, **(parameters or {})},
                cwd=str(root / "notebooks"),
                kernel_name=kernel,
                kernel_manager_class=_kernel_manager(Path(sockets)),
                # stream the notebook's output here as it comes: stdout (what it prints) and
                # stderr (progress bars); papermill's log_output would drop stdout to an
                # unconfigured logger
                stdout_file=sys.stdout,
                stderr_file=sys.stderr,
                progress_bar=False,
                # stop the kernel once the last cell has answered, rather than ask it to shut
                # down: every cell's output and files are in by then, and a graceful shutdown
                # spends about a second of CPU tearing down torch and matplotlib (docs/performance.md)
                shutdown_kernel="immediate",
                # save the executed notebook once, at the end, not after every cell: it goes to a
                # temporary file that only the last save's bytes leave (each save validates and
                # writes the whole notebook, figures included)
                request_save_on_cell_execute=False,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthgen.notebook", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="notebook name without .ipynb, e.g. 02_enumeration")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter (YAML value), e.g. -p split iid")
    parser.add_argument("--output", default=None, help="name of the executed copy (default: the notebook's)")
    parser.add_argument("--kernel", default=None, help="Jupyter kernel (default: the notebook's, 'synthgen')")
    args = parser.parse_args(argv)
    try:
        parameters = {k: yaml.safe_load(v) for k, v in args.parameter}
        run(args.name, _parse_set(args.set), args.kernel, parameters, args.output)
    except (ParamsError, FileNotFoundError) as err:
        print(f"synthgen: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
