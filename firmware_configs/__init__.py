"""Car models: one TOML file per car (vehicle geometry and limits, camera, hardware, safety)."""
