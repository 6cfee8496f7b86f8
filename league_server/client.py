"""A racer's side of the league server's API, for `pitlane submit` and `pitlane submissions` (httpx only: a
racer's laptop needs neither the server nor its database).

    sub = submit_model("http://league.local:8000/races/3", token, Path("models/fast"))   # dict: id, status, ...
    subs = my_submissions("http://league.local:8000", token)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from league_server.errors import LeagueError

TIMEOUT_S = 120.0  # the server checks an upload in a child process before it answers


class SubmitError(LeagueError, RuntimeError):
    """The server refused or could not be reached; the message is what it said (or why it could not)."""


def race_address(race_url: str) -> tuple[str, int]:
    """(server base URL, race id) from a race page's URL, e.g. http://host:8000/races/3."""
    parts = urlsplit(race_url)
    segments = [s for s in parts.path.split("/") if s]
    if (
        parts.scheme not in ("http", "https")
        or len(segments) < 2
        or segments[-2] != "races"
        or not segments[-1].isdigit()
    ):
        raise SubmitError(
            f"--race {race_url!r}: expected the race page's address, e.g. http://HOST:8000/races/3"
        )
    return f"{parts.scheme}://{parts.netloc}", int(segments[-1])


def model_files(model: Path, *, fp32: bool = False) -> tuple[Path, Path]:
    """(the .onnx to submit, its model.json): a model folder's int8 file (what a car runs) unless `fp32`, or
    an .onnx file with model.json beside it."""
    folder = model if model.is_dir() else model.parent
    if model.is_dir():
        names = ("model.onnx",) if fp32 else ("model.int8.onnx", "model.onnx")
        onnx = next((folder / n for n in names if (folder / n).is_file()), None)
        if onnx is None:
            raise SubmitError(
                f"{model}: no {' or '.join(names)} in it (make one with `pitlane export RUN --int8`)"
            )
    else:
        onnx = model
    card = folder / "model.json"
    if not onnx.is_file() or not card.is_file():
        raise SubmitError(f"{onnx}: expected the .onnx file and model.json beside it (from `pitlane export`)")
    return onnx, card


def submit_model(race_url: str, token: str, model: Path, *, fp32: bool = False) -> dict[str, Any]:
    """Upload the model to the race; the submission as the server holds it (status queued, or the earlier
    submission of the same file)."""
    base, race_id = race_address(race_url)
    onnx, card = model_files(model, fp32=fp32)
    files = {"model": (onnx.name, onnx.read_bytes(), "application/octet-stream"),
             "card": ("model.json", card.read_bytes(), "application/json")}  # fmt: skip
    return _call("POST", f"{base}/api/races/{race_id}/submissions", token, files=files)


def my_submissions(server_url: str, token: str) -> list[dict[str, Any]]:
    """The racer's submissions, newest first."""
    return _call("GET", f"{server_url.rstrip('/')}/api/submissions", token)


def _call(method: str, url: str, token: str, **kwargs: Any) -> Any:
    import httpx

    try:
        response = httpx.request(
            method, url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S, **kwargs
        )
    except httpx.HTTPError as exc:
        raise SubmitError(f"{url}: {exc}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise SubmitError(f"the server refused ({response.status_code}): {detail}")
    return response.json()
