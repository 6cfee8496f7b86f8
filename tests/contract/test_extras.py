"""The install extras keep each part light: a car installs ``pitlane[device]`` only, never the ML stack.

Checked twice: on the installed distribution's metadata (what pip actually resolves) and on pyproject.toml
(so a stale install cannot hide an edit). Self-references such as ``pitlane[sim]`` are followed transitively.
Markers other than ``extra == ...`` are ignored on purpose: a platform-conditional torch is still torch.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROJECT = "pitlane"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
ML_STACK = {"torch", "gymnasium", "stable-baselines3"}
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")

# extra name ("" = the base install) -> requirement strings, without "; extra == ..." markers
Extras = dict[str, list[str]]


def _from_metadata() -> Extras:
    requires = importlib.metadata.requires(PROJECT)
    assert requires is not None, f"{PROJECT} is installed without any requirements metadata"
    extras: Extras = {"": []}
    for extra in importlib.metadata.metadata(PROJECT).get_all("Provides-Extra") or []:
        extras.setdefault(canonicalize_name(extra), [])
    for line in requires:
        req = Requirement(line)
        match = _EXTRA_MARKER.search(str(req.marker)) if req.marker else None
        extra = canonicalize_name(match.group(1)) if match else ""
        extras.setdefault(extra, []).append(line)
    return extras


def _from_pyproject() -> Extras:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    extras: Extras = {"": list(project.get("dependencies", []))}
    for extra, reqs in project.get("optional-dependencies", {}).items():
        extras[canonicalize_name(extra)] = list(reqs)
    return extras


SOURCES = {"installed metadata": _from_metadata, "pyproject.toml": _from_pyproject}


def _resolve(extras: Extras, wanted: Iterable[str]) -> tuple[set[str], set[str]]:
    """(distribution names, extras reached) for ``pip install pitlane[wanted]``, following self-references."""
    names: set[str] = set()
    reached: set[str] = set()
    todo = ["", *(canonicalize_name(w) for w in wanted)]
    while todo:
        extra = todo.pop()
        if extra in reached:
            continue
        assert extra in extras, f"extra {extra!r} is referenced but not defined (defined: {sorted(extras)})"
        reached.add(extra)
        for line in extras[extra]:
            req = Requirement(line)
            if canonicalize_name(req.name) == PROJECT:
                todo.extend(canonicalize_name(e) for e in req.extras)
            else:
                names.add(canonicalize_name(req.name))
    return names, reached


@pytest.fixture(params=sorted(SOURCES), scope="module")
def extras(request: pytest.FixtureRequest) -> Extras:
    return SOURCES[request.param]()


def test_device_extra_never_requires_the_ml_stack(extras: Extras) -> None:
    names, _ = _resolve(extras, ["device"])
    assert not names & ML_STACK, f"pitlane[device] (the car) would install {sorted(names & ML_STACK)}"


def test_base_install_requires_no_torch_or_gymnasium(extras: Extras) -> None:
    names, _ = _resolve(extras, [])
    assert not names & ML_STACK, f"the base install would pull {sorted(names & ML_STACK)}"


@pytest.mark.parametrize("part", ["sim", "train", "device", "server", "scale"])
def test_all_includes_every_part(extras: Extras, part: str) -> None:
    all_names, reached = _resolve(extras, ["all"])
    part_names, _ = _resolve(extras, [part])
    assert part in reached, (
        f"pitlane[all] does not include pitlane[{part}] (reaches {sorted(reached - {''})})"
    )
    assert part_names <= all_names, f"pitlane[all] misses {sorted(part_names - all_names)} from [{part}]"


def test_installed_metadata_matches_pyproject() -> None:
    """A stale editable install would make every other check here meaningless; reinstall if this fails."""

    def normalised(extras: Extras) -> dict[str, set[str]]:
        out = {}
        for extra, lines in extras.items():
            reqs = set()
            for line in lines:
                req = Requirement(line)
                reqs.add((canonicalize_name(req.name), tuple(sorted(req.extras)), str(req.specifier)))
            out[extra] = reqs
        return out

    assert normalised(_from_metadata()) == normalised(_from_pyproject()), (
        "installed pitlane metadata differs from pyproject.toml: run `python3 -m pip install -e '.[all,dev]'`"
    )
