"""pitlane's car runtime: drive a real or simulated car from an exported ONNX model, safely, and report laps
to a league over MQTT without losing one. Installs with `pip install pitlane[device]` (no torch, no gymnasium).

config (car file tables) · calibration (deg, m/s <-> µs) · hal/ (camera, drive, lap timer, clock backends) ·
actuator (throttle cap, latch) · estop · watchdog · loop · laps · outbox (SQLite WAL) · telemetry (MQTT) ·
drive (the session) · policy (the exported model). The records it shares (HAL interfaces, model card, wire
format, car file) are in `contracts`.
"""
