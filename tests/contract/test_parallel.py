"""The parallel test run keeps its groups: scripts/test.sh runs pytest-xdist with --dist loadgroup, and modules
that share an expensive fixture (trained runs, exported models) rely on their xdist_group to build it once."""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("group-probe")
def test_xdist_groups_reach_the_scheduler(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not running under pytest-xdist with --dist loadgroup")
    # pytest-xdist tells its scheduler a test's group by a suffix on the node id.
    assert request.node.nodeid.endswith("@group-probe"), (
        f"pytest-xdist did not apply xdist_group ({request.node.nodeid}): every worker would build the grouped "
        "fixtures again; this pytest and pytest-xdist do not work together (pytest-xdist#1386)"
    )
