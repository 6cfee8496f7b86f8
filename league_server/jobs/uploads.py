"""Submitted models on the server's disk: stored once by their SHA-256, checked in a sandboxed child process
before they are queued, and laid out as an evaluation job's folder when a worker takes them.

    data_dir/uploads/<sha256>.onnx        each distinct file once (the same file again is not stored again)
    data_dir/checks/<random>/             an upload being checked (removed afterwards)
    data_dir/jobs/<submission id>/        job.json, model.onnx, model.json, out/ (result, simtrace, PNG)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from contracts.virtual_race import EvaluationJob, VirtualRaceSpec
from league_server.crud.virtual import Upload
from league_server.errors import LeagueError
from league_server.jobs.engine import JOB_FILE, OUT_DIR, run_job
from league_server.jobs.sandbox import Limits

#: the upload check's limits: it parses the graph and opens one ONNX Runtime session, no simulator
CHECK_CPU_S = 60.0
CHECK_WALL_S = 90.0


class UploadError(LeagueError, ValueError):
    """An upload refused before any check could run (too large, a card that is not JSON); names what."""


def parse_card(card_bytes: bytes) -> dict[str, Any]:
    """The uploaded `model.json` as a dict (its schema is checked with the model, in the sandbox)."""
    try:
        card = json.loads(card_bytes)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UploadError(f"model.json: not JSON ({exc})") from None
    if not isinstance(card, dict):
        raise UploadError(f"model.json: expected a JSON object, got {type(card).__name__}")
    return card


def check_upload(
    data_dir: Path, model_bytes: bytes, card: dict[str, Any], spec: VirtualRaceSpec
) -> list[str]:
    """Every reason the upload cannot race in `spec` (empty: it can), found by `virtual_circuit.check` in a
    child process with limits: a hostile file can fail its check, never the server."""
    if len(model_bytes) > spec.limits.max_upload_bytes:
        return [f"model.onnx: {len(model_bytes) / 1e6:.1f} MB is over the race's limit of "
                f"{spec.limits.max_upload_bytes / 1e6:.1f} MB"]  # fmt: skip
    (data_dir / "checks").mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="check-", dir=data_dir / "checks"))
    try:
        write_job(folder, model_bytes, card, spec)
        limits = Limits(CHECK_CPU_S, spec.limits.memory_mb, CHECK_WALL_S)
        run = run_job(folder, limits, check_only=True)
        # the racer knows the files as model.onnx and model.json, not by the server's scratch folder
        return [] if run.failure is None else [run.failure.replace(f"{folder.resolve()}/", "")]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def store_upload(data_dir: Path, model_bytes: bytes, card: dict[str, Any]) -> Upload:
    """The file under data_dir/uploads by its hash (written once, atomically); what a submission records."""
    sha256 = hashlib.sha256(model_bytes).hexdigest()
    relative = Path("uploads") / f"{sha256}.onnx"
    path = data_dir / relative
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(model_bytes)
        os.replace(tmp.name, path)  # a crash mid-write leaves a temp file, never half a model
    return Upload(sha256=sha256, size_bytes=len(model_bytes), stored_path=str(relative), card=card)


def job_folder(
    data_dir: Path, submission_id: int, stored_path: str, card: dict[str, Any], spec: VirtualRaceSpec
) -> Path:
    """data_dir/jobs/<id>: the job as `python -m virtual_circuit.job` reads it (made afresh each time)."""
    folder = data_dir / "jobs" / str(submission_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # checked: the upload passed `check_upload` when it was submitted; its graph need not be read again
    write_job(folder, (data_dir / stored_path).read_bytes(), card, spec, checked=True)
    return folder


def job_output(data_dir: Path, submission_id: int, name: str) -> Path:
    """A file the submission's evaluation wrote (`replay.json`, `trajectory.png`, ...), which may not exist."""
    return data_dir / "jobs" / str(submission_id) / OUT_DIR / name


def write_job(
    folder: Path, model_bytes: bytes, card: dict[str, Any], spec: VirtualRaceSpec, *, checked: bool = False
) -> Path:
    """An evaluation job in `folder` (which exists): model.onnx, model.json and job.json; the folder."""
    (folder / "model.onnx").write_bytes(model_bytes)
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    job = EvaluationJob(spec=spec, model="model.onnx", card="model.json", out_dir=OUT_DIR, checked=checked)
    job.write(folder / JOB_FILE)
    return folder
