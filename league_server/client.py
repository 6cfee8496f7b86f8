"""A racer's side of the league server's API, for `pitlane submit`, `pitlane submissions`, `pitlane recipe
publish` and `pitlane train --remix URL` (httpx only: a racer's laptop needs neither the server nor its
database).

    sub = submit_model("http://league.local:8000/races/3", token, Path("models/fast"))   # dict: id, status, ...
    subs = my_submissions("http://league.local:8000", token)
    shared = publish_recipe("http://league.local:8000", token, toml_text)   # {id, url}
    text = fetch_recipe_text(shared["url"], token)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

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


# ---------------------------------------------------------------------------------------------- recipes


class RecipeServerError(LeagueError, RuntimeError):
    """A recipe could not be published to, or fetched from, a league server; the message says why and what
    to do (a wrong token, a recipe the server refused and its problems, a server that is not there)."""


def publish_recipe(server_url: str, token: str, toml_text: str) -> dict[str, Any]:
    """Share a recipe (TOML text) in the league's gallery: POST /api/recipes {"toml": text}. The server's
    answer, {id, url}, with `url` made absolute (the recipe's TOML address, for `pitlane train --remix`)."""
    base = server_url.rstrip("/")
    answer = _recipe_call("POST", f"{base}/api/recipes", token, json={"toml": toml_text}).json()
    if not isinstance(answer, dict) or "url" not in answer:
        raise RecipeServerError(f"{base}/api/recipes: expected {{id, url}} from the server, got {answer!r}")
    return {**answer, "url": urljoin(base + "/", str(answer["url"]))}


def fetch_recipe_text(url: str, token: str | None = None) -> str:
    """The TOML text of a recipe at `url` (a gallery address, http://HOST:8000/api/recipes/ID.toml)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise RecipeServerError(f"{url!r}: expected an http(s) address of a recipe")
    return _recipe_call("GET", url, token).text


def _recipe_call(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
    """The httpx response of a recipe request, or RecipeServerError explaining the failure."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, headers=headers, timeout=TIMEOUT_S, **kwargs)
    except httpx.ConnectError as exc:
        raise RecipeServerError(
            f"{url}: cannot connect ({exc}); is the league server running there?"
        ) from None
    except httpx.HTTPError as exc:
        raise RecipeServerError(f"{url}: {exc}") from None
    if response.status_code >= 400:
        raise RecipeServerError(_refusal(url, response.status_code, _detail(response)))
    return response


def _refusal(url: str, status: int, detail: str) -> str:
    """What a refused recipe request means for the racer, by HTTP status."""
    if status == 401:
        return (f"{url}: the server did not accept the racer token (401: {detail}); pass yours with --token "
                "or $PITLANE_RACER_TOKEN")  # fmt: skip
    if status == 404:
        return f"{url}: not found (404: {detail})"
    if status == 409:
        return f"{url}: the server refused the recipe (409 conflict: {detail})"
    if status == 422:
        return f"{url}: the server found problems in the recipe (422): {detail}"
    return f"{url}: the server refused ({status}): {detail}"


def _detail(response: Any) -> str:
    """The server's reason: `detail` (a string, or pydantic's list of errors) and `problems` ({field,
    message, line}) joined into one line; the body's text when it is not JSON."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)
    parts: list[str] = []
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI's validation errors
        parts += [f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg')}" for d in detail]
    elif detail is not None:
        parts.append(str(detail))
    for problem in body.get("problems") or ():
        line = f" (line {problem['line']})" if problem.get("line") else ""
        parts.append(f"{problem.get('field')}{line}: {problem.get('message')}")
    return "; ".join(parts) or response.reason_phrase
