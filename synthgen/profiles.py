"""Profiles: named sets of params (``smoke``, ``default``, ``paper``).

``profiles/default.yaml`` is the full default; ``profiles/NAME.yaml`` is an overlay whose
keys replace the default's.  :func:`use_profile` writes the merged result to
``params.yaml``, keeping the default's comments, after validating it.  A params.yaml with
edits of its own is saved to ``params.yaml.bak`` first, so switching loses nothing.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from synthgen.atomic import write_text
from synthgen.params import ParamsError, validate_params

PROFILE_DIR = "profiles"


def available_profiles(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / PROFILE_DIR).glob("*.yaml"))


def _merge(base, overlay, where: str = "") -> None:
    for key, value in overlay.items():
        if key not in base:
            raise ParamsError(f"profile overlay: unknown key {where}{key}")
        if isinstance(value, dict) and isinstance(base[key], dict) and not _is_leaf_mapping(key):
            _merge(base[key], value, f"{where}{key}.")
        elif isinstance(value, list):
            # written inline like the default's lists ([0, 1]), not as a block under the key's comment
            seq = CommentedSeq(value)
            seq.fa.set_flow_style()
            base[key] = seq
        else:
            base[key] = value


def _is_leaf_mapping(key: str) -> bool:
    # mappings that are one value (replaced whole), not a section: an overlay's scaling sizes
    # are the grid's sizes, not additions to the default's
    # (and a calibration overlay's recipes are the sweep's recipes)
    return key in {"grid", "sizes", "recipes"}


def profile_text(root: Path, name: str) -> str:
    """The params.yaml text of profile ``name``."""
    names = available_profiles(root)
    if name not in names:
        raise ParamsError(f"profile {name!r} does not exist; choose one of {', '.join(names)}")
    default = (root / PROFILE_DIR / "default.yaml").read_text()
    if name == "default":
        text = default
    else:
        yaml = YAML()
        yaml.width = 100
        data = yaml.load(default)
        overlay = YAML(typ="safe").load((root / PROFILE_DIR / f"{name}.yaml").read_text()) or {}
        _merge(data, overlay)
        buf = io.StringIO()
        yaml.dump(data, buf)
        text = f"# PROFILE {name}: written by `synthgen profile {name}` (profiles/default.yaml + profiles/{name}.yaml)\n" + buf.getvalue()
    validate_params(YAML(typ="safe").load(text), source=f"profile {name}")
    return text


def use_profile(root: Path, name: str) -> str:
    """Make ``name`` the active profile; return a one-line report."""
    text = profile_text(root, name)
    target = root / "params.yaml"
    note = ""
    if target.exists():
        current = target.read_text()
        if current == text:
            return f"params.yaml already holds profile {name}"
        if not any(current == profile_text(root, other) for other in available_profiles(root)):
            shutil.copyfile(target, root / "params.yaml.bak")
            note = " (your edited params.yaml was saved to params.yaml.bak)"
    write_text(target, text)
    return f"params.yaml now holds profile {name}{note}"
