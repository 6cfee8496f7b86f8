"""Shared test fixtures and helpers.

- Everything a test reads lives in the repository: DeepRacer-style files in ``tests/fixtures/deepracer``
  (``tests/deepracer_files.py``), route files in ``sim/tracks/data``.
- ``require_service(host, port, name)``: call at the top of a test that needs PostgreSQL, Mosquitto, ...
  Absent: skip with a reason locally, fail in CI.
  Import it with ``from tests.conftest import require_service``; or use the ``postgres``/``mosquitto``
  fixtures.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

# Headless by default: pygame and matplotlib must never try to open a window in tests.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]

POSTGRES = ("127.0.0.1", 5432, "PostgreSQL")
MOSQUITTO = ("127.0.0.1", 1883, "Mosquitto (MQTT broker)")


def in_ci() -> bool:
    """True when the CI environment variable is set to something truthy (CI=true, CI=1, ...)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def skip_or_fail(reason: str) -> None:
    """Skip the current test locally; in CI a missing prerequisite is a failure, never a silent skip."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure rather than a skip)", pytrace=False)
    pytest.skip(reason)


def require_service(host: str, port: int, name: str, timeout_s: float = 0.5) -> None:
    """Skip (locally) or fail (in CI) unless a TCP service accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as exc:
        skip_or_fail(f"{name} is not reachable at {host}:{port} ({exc.__class__.__name__}: {exc})")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding pyproject.toml)."""
    return REPO_ROOT


@pytest.fixture
def postgres() -> tuple[str, int]:
    """(host, port) of a PostgreSQL server on 127.0.0.1:5432; skips locally / fails in CI when absent."""
    host, port, name = POSTGRES
    require_service(host, port, name)
    return host, port


@pytest.fixture
def mosquitto() -> tuple[str, int]:
    """(host, port) of a Mosquitto broker on 127.0.0.1:1883; skips locally / fails in CI when absent."""
    host, port, name = MOSQUITTO
    require_service(host, port, name)
    return host, port


@pytest.fixture(scope="session", autouse=True)
def _track_geometry_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Cached track geometry lives in this run's temporary folder (shared by the xdist workers and the CLI
    subprocesses tests start), never in the user's ~/.cache."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder above gw0, gw1, ...: one cache for the whole run
    os.environ["PITLANE_CACHE_DIR"] = str(root / "pitlane-cache")
