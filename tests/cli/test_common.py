"""What every sub-command shares: missing packages and errors give one line and exit 2."""

from __future__ import annotations

import pytest
import typer

from pitlane.commands.common import require


def test_a_missing_package_names_the_extra_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as info:
        require("train", "numpy", "no_such_module_for_pitlane_tests")
    assert info.value.exit_code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no_such_module_for_pitlane_tests" in err and "pitlane[train]" in err
    assert "numpy" not in err.split("needs")[1].split(":")[0]  # only what is missing is named


def test_present_packages_pass() -> None:
    require("train", "numpy", "typer")
