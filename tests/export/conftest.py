"""The export tests share session-wide exports (tests/export_fixtures.py)."""

from tests.export_fixtures import exported_camera, exported_continuous, exported_lidar, exported_state

__all__ = ["exported_camera", "exported_continuous", "exported_lidar", "exported_state"]
