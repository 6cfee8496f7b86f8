"""The CLI's child processes (`pitlane demo`'s steps, the served league of the bench and tests) run the
installed pitlane from any working directory, also one holding a folder named `pitlane` (the clone)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from league_server.serve_process import PITLANE_CLI


def test_a_folder_named_pitlane_in_the_working_directory_does_not_shadow_the_package(tmp_path: Path) -> None:
    (tmp_path / "pitlane").mkdir()  # e.g. ~ holding the clone ~/pitlane
    shadowed = subprocess.run(
        [sys.executable, "-m", "pitlane", "--version"], cwd=tmp_path, capture_output=True, text=True
    )
    assert shadowed.returncode != 0 and "__version__" in shadowed.stderr  # what `python -m` did
    result = subprocess.run([*PITLANE_CLI, "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pitlane ")
