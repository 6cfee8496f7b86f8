"""Package boundaries from DESIGN.md: the import-linter contracts in pyproject.toml, plus run-time checks
that importing a package does not drag in what it must not (in a fresh interpreter, so tests cannot leak)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, skip_or_fail


def _lint_imports_executable() -> str | None:
    found = shutil.which("lint-imports")
    if found:
        return found
    beside_python = Path(sysconfig.get_path("scripts")) / "lint-imports"
    return str(beside_python) if beside_python.exists() else None


def _run_python(code: str, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, *args, *(["-c", code] if code else [])],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_import_linter_contracts_hold() -> None:
    exe = _lint_imports_executable()
    if exe is None:
        skip_or_fail("lint-imports (import-linter) is not installed: python3 -m pip install -e '.[dev]'")
    proc = subprocess.run([exe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (
        f"lint-imports failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )


# package -> modules that must not be loaded after importing every module of that package
FORBIDDEN_AT_IMPORT = {
    # the shared floor: stdlib, numpy and pydantic only, and no other pitlane package
    "contracts": [
        "torch",
        "stable_baselines3",
        "gymnasium",
        "fastapi",
        "sqlalchemy",
        "onnxruntime",
        "scipy",
        "sim",
        "trainer",
        "device",
        "league_server",
        "pitlane",
        "firmware_configs",
    ],
    "sim": ["torch", "stable_baselines3", "pygame"],  # pygame only inside the viewer, imported lazily
    "device": ["torch", "gymnasium", "stable_baselines3"],
    "league_server": ["torch", "stable_baselines3"],
    # the benchmarks (moved out of sim, trainer, league_server and pitlane) keep the checks they had there
    "bench": ["torch", "stable_baselines3", "pygame"],
    # evaluation jobs: the simulator and the car's ONNX path, never the trainer's torch or the server
    "virtual_circuit": ["torch", "stable_baselines3", "pygame", "fastapi", "sqlalchemy"],
}

_IMPORT_ALL = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    package, forbidden = sys.argv[1], json.loads(sys.argv[2])
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        if not info.name.endswith(".__main__"):  # importing __main__ would run it
            importlib.import_module(info.name)
    print(json.dumps(sorted(m for m in forbidden if m in sys.modules)))
    """
)


@pytest.mark.parametrize("package", sorted(FORBIDDEN_AT_IMPORT))
def test_importing_a_package_loads_nothing_forbidden(package: str) -> None:
    forbidden = FORBIDDEN_AT_IMPORT[package]
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, package, json.dumps(forbidden)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"importing every module of {package} failed:\n{proc.stderr}"
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing {package} loaded {loaded}"


def test_pitlane_help_works_and_lists_commands() -> None:
    proc = _run_python("", "-m", "pitlane", "--help")
    assert proc.returncode == 0, f"`python -m pitlane --help` failed:\n{proc.stdout}\n{proc.stderr}"
    assert "tracks" in proc.stdout, f"`pitlane --help` does not list `tracks`:\n{proc.stdout}"


def test_cli_root_imports_the_heavy_parts_lazily() -> None:
    """`pitlane --help` must work on a car with only pitlane[device] installed, and stay fast."""
    heavy = ["torch", "stable_baselines3", "gymnasium", "pygame", "matplotlib", "fastapi", "sqlalchemy"]
    proc = _run_python(
        f"import json, sys, pitlane.cli; print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    )
    assert proc.returncode == 0, f"importing pitlane.cli failed:\n{proc.stderr}"
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing pitlane.cli loaded {loaded}: import them inside the command functions"


def test_trainer_contract_forbids_every_car_module_but_the_inference_path() -> None:
    """The trainer may reach only `device.policy` (and its errors); a new car module is out of reach by default."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    contracts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    trainer = next(c for c in contracts if c["source_modules"] == ["trainer"])
    device_dir = REPO_ROOT / "device"
    car_modules = {
        f"device.{p.stem if p.is_file() else p.name}"
        for p in device_dir.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    allowed = {"device.policy", "device.errors"}
    missing = sorted(car_modules - allowed - set(trainer["forbidden_modules"]))
    assert missing == [], f"pyproject.toml's trainer contract does not forbid {missing}; add them there"
