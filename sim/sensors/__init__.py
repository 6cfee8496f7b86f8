"""Sensors that turn the cars' poses into what a real car's sensors give: camera frames, lidar scans."""
