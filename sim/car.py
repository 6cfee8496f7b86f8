"""Car models for the simulator: the schema and loader live in `firmware_configs.schema`, shared with the car.

The simulator reads `[vehicle]` (physics) and `[camera]` of a `firmware_configs/<car>.toml`; see
`firmware_configs.schema` for every key and unit.
"""

from firmware_configs.schema import (
    CameraConfig,
    CarConfig,
    CarConfigError,
    CarInfo,
    VehicleConfig,
    VehicleParams,
    car_config_from_dict,
    list_cars,
    load_car,
)

__all__ = [
    "CameraConfig",
    "CarConfig",
    "CarConfigError",
    "CarInfo",
    "VehicleConfig",
    "VehicleParams",
    "car_config_from_dict",
    "list_cars",
    "load_car",
]
