"""`export_run(run, out_dir, int8=...)`: a trained run -> model.onnx (+ model.int8.onnx), model.json, parity.json.

Steps: load the run's model (best.zip, else final.zip) and config; build the plain actor graph
(`graph.py`) and export it (opset 17, `onnx.checker` full check, the card's essentials as metadata_props;
an int8 file with 16-bit activations is opset 21, which 16-bit QuantizeLinear needs); with int8, drive
the checkpoint on the training track to record calibration frames and quantise (`quantize.py`); write the
card; drive the fp32 model for the agreement frames and evaluate the checkpoint, fp32 and int8 closed-loop
(`parity.py`) and time each file (one thread); put the fp32 evaluation in the card; drive the file a car runs
(int8 when there is one) under the held-out `eval-shift` on tracks it never saw for the card's `robustness`
(`trainer/robustness.py`; the per-seed rows go to parity.json).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contracts.model_card import CARD_FILE, ModelCard, ModelFile
from sim.drivers import onnx_driver
from trainer.config import RunConfig
from trainer.evaluate import load_sb3_run, predict_fn
from trainer.export import graph as graph_mod
from trainer.export import parity
from trainer.export.card import build_card, model_file
from trainer.export.errors import ExportError
from trainer.export.frames import drive, each_car, fleet_frames
from trainer.export.observation import observation_card, single_kind
from trainer.export.quantize import FrameReader, activation_for, quantize_int8
from trainer.robustness import RobustnessSettings, robustness_card

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
PARITY_FILE = "parity.json"


@dataclass(frozen=True)
class ExportSettings:
    """How much driving the export does. Frames are control steps (15 Hz); laps are evaluation laps."""

    int8: bool = False
    calibration_frames: int = 2_000
    agreement_frames: int = 5_000
    eval_laps: int = 3
    eval_max_time_s: float | None = None  # per evaluation, simulated s (None: sim.evaluation's default)
    latency_seconds: float = 1.0  # timing of each exported file for the report's latency section
    min_agreement: float = parity.AGREEMENT_TARGET  # int8 vs fp32, on frames that are not near-ties
    lap_tolerance: float = parity.LAP_TIME_TOL  # int8 vs fp32 closed-loop best lap, a fraction
    tie_fraction: float = parity.TIE_GAP_FRACTION  # near-tie: fp32 top-2 logit gap < this x the median
    robustness: RobustnessSettings | None = field(default_factory=RobustnessSettings)  # None: no card


@dataclass
class ExportResult:
    out_dir: Path
    files: dict[str, Path]
    card: ModelCard
    parity: dict[str, Any]
    #: why model.int8.onnx misses its targets (`parity.int8_problems`); empty when it meets them or no int8
    int8_problems: list[str] = field(default_factory=list)


def load_run(run: str | Path) -> tuple[Any, RunConfig, Path, Path]:
    """(SB3 model, portable RunConfig, model .zip, run directory) of a run directory or its .zip."""
    from trainer.errors import EvaluateError

    try:
        return load_sb3_run(run)
    except EvaluateError as exc:
        raise ExportError(f"cannot export: {exc}") from None


def export_run(
    run: str | Path,
    out_dir: str | Path,
    settings: ExportSettings | None = None,
    *,
    on_stage: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export `run` into `out_dir` (created). `on_stage(text)` is told what is happening (progress display)."""
    from sim.envs.setup import build_parts

    settings = settings or ExportSettings()
    stage = on_stage or (lambda _text: None)
    torch.set_num_threads(1)
    model, config, model_path, run_dir = load_run(run)
    kind = single_kind(config.observation)
    space = config.resolved_action_space()
    parts = build_parts(1, track=config.track, car=config.car, observation=config.observation,
                        action_space=space, reward="centerline")  # fmt: skip
    obs_card = observation_card(config.observation, parts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    card = build_card(config, run_dir=run_dir, car_name=parts.car.car.name, steps=int(model.num_timesteps),
                      observation=obs_card)  # fmt: skip
    t0 = time.monotonic()

    stage("exporting the fp32 graph")
    reference = graph_mod.actor_graph(model, space, kind)
    actor = graph_mod.actor_graph(model, space, kind, space_to_depth=True)
    example = graph_mod.example_input(obs_card.shape, obs_card.dtype)
    fp32_path = out / FP32_FILE
    doc = f"pitlane {kind} policy from {run_dir} ({model_path.name})"
    fp32 = graph_mod.finish_model(
        graph_mod.to_onnx_bytes(actor, example, obs_card.input_name),
        {**card.essentials(), "pitlane.precision": "fp32"},
        doc,
    )
    graph_mod.save(fp32, fp32_path)
    files: list[ModelFile] = [model_file(fp32_path, "fp32")]
    paths = {"fp32": fp32_path}

    if settings.int8:
        stage(f"recording {settings.calibration_frames:,} calibration frames (checkpoint driving)")
        calib = fleet_frames(
            sb3_batch_driver(model), config, n_frames=settings.calibration_frames, seed=config.seed + 1
        )
        stage(f"quantising to int8 on {len(calib):,} frames")
        int8_path = out / INT8_FILE
        reader = FrameReader(obs_card.input_name, calib, obs_card.shape, obs_card.dtype)
        activations = activation_for(obs_card.dtype)
        quantize_int8(fp32_path, int8_path, reader, activation=activations)
        _restamp(int8_path, {**card.essentials(), "pitlane.precision": "int8",
                             "pitlane.activations": activations},
                 f"{doc}, int8 QDQ ({activations} activations)")  # fmt: skip
        files.append(model_file(int8_path, "int8", activations))
        paths["int8"] = int8_path
    elif (out / INT8_FILE).exists():
        (
            out / INT8_FILE
        ).unlink()  # an earlier export's int8 file would sit beside a card that does not know it
    card = card.model_copy(update={"files": tuple(files)})
    card.write(out / CARD_FILE)
    stage("parity: torch vs ONNX, int8 vs fp32, closed-loop evaluations")
    report = parity_report(model, config, (reference, actor), obs_card, paths, settings, stage)
    report["export_wall_s"] = round(time.monotonic() - t0, 2)
    card = card.model_copy(update={"evaluation": report["closed_loop"]["fp32"]})
    if settings.robustness is not None:
        card = _with_robustness(card, config, paths, settings.robustness, report, stage)
    card.write(out / CARD_FILE)
    problems = parity.int8_problems(report, lap_tolerance=settings.lap_tolerance)
    if "int8" in paths:
        report["int8_meets_targets"] = not problems
        report["int8_problems"] = problems
    (out / PARITY_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return ExportResult(out_dir=out, files=paths, card=card, parity=report, int8_problems=problems)


def _with_robustness(
    card: ModelCard,
    config: RunConfig,
    paths: dict[str, Path],
    settings: RobustnessSettings,
    report: dict[str, Any],
    stage: Callable[[str], None],
) -> ModelCard:
    """The card with its robustness (the file a car runs, driven under shift); the rows go to `report`."""
    from device.policy import OnnxPolicy

    path = paths.get("int8", paths["fp32"])
    stage(
        f"robustness: {path.name} under {settings.randomization}, {settings.seeds} seeds per held-out track"
    )
    driver = onnx_driver(OnnxPolicy(path), config.resolved_action_space())
    robust, result = robustness_card(driver, config, trained_on=card.tracks, model_file=path.name,
                                     settings=settings)  # fmt: skip
    report["robustness"] = {**result.to_dict(), "model_file": path.name, "held_out": robust.held_out}
    return card.model_copy(update={"robustness": robust})


def sb3_batch_driver(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Actions (n, ...) of SB3's deterministic predict for a batch of observations."""
    return lambda obs: model.predict(obs, deterministic=True)[0]


def _restamp(path: Path, metadata: dict[str, str], doc: str) -> None:
    """Put the card's essentials on a model written by another tool (the quantiser), check it, save it."""
    import onnx

    model = onnx.load(str(path))
    graph_mod.set_metadata(model, metadata, doc)
    graph_mod.check(model, str(path))
    graph_mod.save(model, path)


def parity_report(
    model: Any,
    config: RunConfig,
    actors: tuple[graph_mod.ActorGraph, graph_mod.ActorGraph],
    obs_card: Any,
    paths: dict[str, Path],
    settings: ExportSettings,
    stage: Callable[[str], None],
) -> dict[str, Any]:
    """The parity report (see `trainer/export/parity.py`) of the exported files in `paths`; `actors`: the
    plain torch actor (the reference) and the graph module that was exported (`graph.with_space_to_depth`)."""
    from device.policy import OnnxPolicy, load_session

    space = config.resolved_action_space()
    discrete = space.kind == "discrete"
    policies = {precision: OnnxPolicy(path) for precision, path in paths.items()}
    fp32 = policies["fp32"]
    stage(f"driving {settings.agreement_frames:,} frames with the fp32 model")
    frames = fleet_frames(
        each_car(onnx_driver(fp32, space)), config, n_frames=settings.agreement_frames, seed=config.seed + 2
    )
    fp32_cmd = parity.commands(fp32.act, frames)
    report: dict[str, Any] = {
        "frames_source": "closed-loop driving of the fp32 model: 8 cars of the training environment from "
        "seeded round-robin starts (calibration: the checkpoint driving, other starts)",
        "track": config.track,
    }

    # torch vs ONNX fp32: the shipped outputs, and the head's output through a twin export that also gives it
    inputs = np.stack([fp32.prepare(f)[0] for f in frames])
    with torch.no_grad():
        reference, exported = actors
        reference.raw = exported.raw = True
        chunks = [reference(torch.as_tensor(inputs[i : i + 256])) for i in range(0, len(inputs), 256)]
        t_steer, t_speed, t_raw = (torch.cat([c[j] for c in chunks]) for j in range(3))
        twin_bytes = graph_mod.to_onnx_bytes(exported, graph_mod.example_input(obs_card.shape, obs_card.dtype),
                                             obs_card.input_name)  # fmt: skip
        reference.raw = exported.raw = False
    twin = _session_from_bytes(twin_bytes, load_session, paths["fp32"].parent)
    onnx_raw = np.concatenate([twin.run(["raw"], {obs_card.input_name: x[None]})[0] for x in inputs])
    torch_cmd = np.stack([t_steer.numpy(), t_speed.numpy()], axis=1).astype(np.float64)
    report["torch_vs_onnx_fp32"] = {
        "frames": len(frames),
        "max_abs_diff_head_output": parity.max_abs_diff(t_raw.numpy(), onnx_raw),
        "head_output": "logits" if discrete else "mean action (normalised)",
        "max_abs_diff_steering_deg": parity.max_abs_diff(torch_cmd[:, 0], fp32_cmd[:, 0]),
        "max_abs_diff_speed_mps": parity.max_abs_diff(torch_cmd[:, 1], fp32_cmd[:, 1]),
    }
    # SB3's own predict (what training did), decoded by the action space
    sb3_actions = np.array([predict_fn(model)(f) for f in frames])
    steer, speed = space.decode(sb3_actions)
    report["checkpoint_vs_fp32"] = parity.agreement(np.stack([steer, speed], 1), fp32_cmd, discrete=discrete)
    if "int8" in policies:
        int8_cmd = parity.commands(policies["int8"].act, frames)
        report["int8_vs_fp32"] = parity.agreement(fp32_cmd, int8_cmd, discrete=discrete,
                                                  target=settings.min_agreement)  # fmt: skip
        if discrete:
            ties = parity.near_ties(onnx_raw, parity.disagreeing(fp32_cmd, int8_cmd),
                                    tie_fraction=settings.tie_fraction, target=settings.min_agreement)  # fmt: skip
            report["int8_vs_fp32"].update(ties)

    closed: dict[str, Any] = {}
    drivers = {"checkpoint": predict_fn(model)} | {p: onnx_driver(pol, space) for p, pol in policies.items()}
    for name, driver in drivers.items():
        stage(f"closed-loop evaluation: {name}, {settings.eval_laps} laps")
        result = drive(driver, config, seed=config.seed, laps=settings.eval_laps,
                       max_time_s=settings.eval_max_time_s)  # fmt: skip
        closed[name] = parity.evaluation_summary(result)
    closed["fp32_vs_checkpoint"] = parity.lap_ratio(closed["fp32"], closed["checkpoint"])
    if "int8" in closed:
        closed["int8_vs_fp32"] = parity.lap_ratio(
            closed["int8"], closed["fp32"], tolerance=settings.lap_tolerance
        )
    report["closed_loop"] = closed
    report["latency"] = latency(paths, inputs[:500], settings.latency_seconds)
    return report


def latency(paths: dict[str, Path], inputs: np.ndarray, seconds: float = 1.0) -> dict[str, Any]:
    """Single-frame latency (ms, the car's one-thread session) of each exported file on recorded frames;
    measured on this machine, for orientation (`pitlane bench inference` is the benchmark)."""
    from trainer.export.latency import time_model

    out: dict[str, Any] = {}
    for precision, path in paths.items():
        row = time_model(path, inputs, seconds=seconds)
        out[precision] = {"p50_ms": row.p50_ms, "p99_ms": row.p99_ms, "runs": row.runs}
    return out


def _session_from_bytes(data: bytes, load_session: Callable[[Path], Any], folder: Path) -> Any:
    """An ONNX Runtime session (the car's options) of an in-memory model, through a temporary file."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".onnx", dir=folder, delete=True) as handle:
        handle.write(data)
        handle.flush()
        return load_session(Path(handle.name))
