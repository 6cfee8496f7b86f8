"""Admin bearer-token check, car and timer credentials, and Mosquitto-compatible password hashes.

`hash_mqtt_password` writes Mosquitto's own password-file format (mosquitto_passwd, Mosquitto >= 2.0):
``$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`` — 12-byte salt, 64-byte key, 101 iterations as
mosquitto_passwd uses. Hand-written over hashlib.pbkdf2_hmac because no library writes this exact format, and
so `pitlane league broker-config` can write a password file straight from the database: the server never
stores a car's MQTT password in plain text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

MOSQUITTO_ITERATIONS = 101
MOSQUITTO_SALT_BYTES = 12
MOSQUITTO_KEY_BYTES = 64  # sha512 digest size


def check_bearer(authorization: str | None, expected_token: str | None) -> bool:
    """True when `authorization` is ``Bearer <expected_token>`` (constant-time); False when no token is set."""
    if not expected_token or not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode("utf-8"), expected_token.encode("utf-8"))


def hash_mqtt_password(
    password: str, *, iterations: int = MOSQUITTO_ITERATIONS, salt: bytes | None = None
) -> str:
    """`password` as a Mosquitto ``$7$`` password-file hash (PBKDF2-HMAC-SHA512)."""
    if iterations < 1:
        raise ValueError(f"iterations: expected >= 1, got {iterations}")
    salt = secrets.token_bytes(MOSQUITTO_SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, MOSQUITTO_KEY_BYTES)
    salt_b64 = base64.b64encode(salt).decode("ascii")
    key_b64 = base64.b64encode(key).decode("ascii")
    return f"$7${iterations}${salt_b64}${key_b64}"


def verify_mqtt_password(password: str, encoded: str) -> bool:
    """True when `password` matches a ``$7$`` hash (constant-time); False for any other or malformed hash."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error):
        return False
    if iterations < 1:
        return False
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, len(expected))
    return hmac.compare_digest(key, expected)


@dataclass(frozen=True)
class CarCredentials:
    """What a car needs to connect and sign: shown once at provisioning, never again (the password is stored
    only as a hash; the HMAC secret is stored because the server verifies signatures with it)."""

    car_id: str
    mqtt_username: str
    mqtt_password: str
    hmac_secret: str


def _new_mqtt_password() -> str:
    return secrets.token_urlsafe(24)


def _new_hmac_secret() -> str:
    return secrets.token_hex(32)


def new_car_credentials(car_id: str) -> CarCredentials:
    """Fresh random credentials for `car_id` (MQTT username = car id, so ACLs read `pitlane/+/cars/<user>/#`)."""
    return CarCredentials(
        car_id=car_id,
        mqtt_username=car_id,
        mqtt_password=_new_mqtt_password(),
        hmac_secret=_new_hmac_secret(),
    )


TIMER_USERNAME_PREFIX = "timer-"


@dataclass(frozen=True)
class TimerCredentials:
    """What a trackside timer needs to connect and sign its crossings; shown once, like `CarCredentials`."""

    timer_id: str
    mqtt_username: str
    mqtt_password: str
    hmac_secret: str


def timer_mqtt_username(timer_id: str) -> str:
    """``timer-<timer_id>``: prefixed, so a timer's login never takes a car's name (car login = car id)."""
    return f"{TIMER_USERNAME_PREFIX}{timer_id}"


def new_timer_credentials(timer_id: str) -> TimerCredentials:
    """Fresh random credentials for a timer (username `timer_mqtt_username`)."""
    return TimerCredentials(
        timer_id=timer_id,
        mqtt_username=timer_mqtt_username(timer_id),
        mqtt_password=_new_mqtt_password(),
        hmac_secret=_new_hmac_secret(),
    )


def new_admin_token() -> str:
    """A random admin bearer token (for `pitlane league serve` when none is configured)."""
    return secrets.token_urlsafe(32)


def new_racer_token() -> str:
    """A racer's secret token (32 random bytes, URL-safe): what `pitlane submit --token` and the sign-in take."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The stored form of a racer token: its SHA-256, hex. The token is random, not a password a person chose,
    so a slow hash would add nothing and one indexed lookup finds its racer."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
