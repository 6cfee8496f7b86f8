"""After training: the run exported into out/ (`trainer.export`: model.onnx, model.int8.onnx, model.json,
parity.json), the exported fp32 model evaluated as a car runs it (ONNX Runtime through `device.policy`, the
virtual circuit's path) for 3 laps under DeepRacer's evaluation rules, and the drive written as
evaluation.png and replay.json (`sim.replay`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from contracts.race import RaceRules
from contracts.recipe import TRAINING_FILES, TrainingOutcome
from firmware_configs import load_car
from sim.evaluation import EvaluationResult
from sim.replay import drive_png, replay_of
from trainer.evaluate import evaluate_policy, load_onnx_policy
from trainer.export.pipeline import ExportResult, ExportSettings, export_run
from trainer.job.folder import JobFolder
from trainer.job.training import Trained

log = logging.getLogger(__name__)

#: DeepRacer's console evaluation: 3 laps, 2 s added per off-track, the car put back on the track each time
EVALUATION_RULES = RaceRules(laps=3)


def export(trained: Trained, folder: JobFolder) -> ExportResult:
    """The run's best model exported into out/, int8 too (a car without a float accelerator runs it)."""
    return export_run(trained.run, folder.out, ExportSettings(int8=True, eval_laps=EVALUATION_RULES.laps),
                      on_stage=lambda text: log.info("export: %s", text))  # fmt: skip


def evaluate_export(folder: JobFolder) -> EvaluationResult:
    """The exported fp32 model driven on its card's track (the recipe's) from the start line; writes
    evaluation.png and replay.json into out/."""
    policy, config = load_onnx_policy(folder.out / TRAINING_FILES["onnx"])
    rules = EVALUATION_RULES
    result = evaluate_policy(policy, config, laps=rules.laps, offtrack_penalty_s=rules.offtrack_penalty_s,
                             max_resets=rules.max_resets)  # fmt: skip
    top_speed_mps = load_car(config.car).vehicle.max_speed_mps
    drive_png(result, folder.out / TRAINING_FILES["png"], top_speed_mps)
    replay = replay_of(result, top_speed_mps)
    (folder.out / TRAINING_FILES["replay"]).write_text(replay.model_dump_json(), encoding="utf-8")
    return result


def finished(
    trained: Trained, exported: ExportResult, evaluation: EvaluationResult, out: Path
) -> TrainingOutcome:
    """result.json of a job that trained, exported and evaluated its model."""
    return TrainingOutcome(
        status="finished",
        steps=trained.steps,
        training_s=round(trained.training_s, 2),
        stopped_by=trained.stopped_by,
        best_eval_lap_s=evaluation.summary["best_lap_s"],
        laps=tuple(lap.to_dict() for lap in evaluation.laps),
        parity=parity_summary(exported.parity),
        files={role: name for role, name in TRAINING_FILES.items() if (out / name).is_file()},
    )


def parity_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What a racer reads of parity.json (the file has it all): the exported files' closed-loop best laps
    beside the trained checkpoint's, how often int8 takes fp32's action, and whether int8 meets its targets
    (and why not)."""
    closed = report.get("closed_loop", {})
    int8 = report.get("int8_vs_fp32") or {}
    return {
        "best_lap_s": {
            name: closed[name]["best_lap_s"] for name in ("checkpoint", "fp32", "int8") if name in closed
        },
        "int8_agreement": int8.get("agreement_non_tied", int8.get("agreement")),
        "int8_meets_targets": report.get("int8_meets_targets"),
        "int8_problems": report.get("int8_problems", []),
        "torch_vs_onnx_max_abs_diff": (report.get("torch_vs_onnx_fp32") or {}).get(
            "max_abs_diff_head_output"
        ),
    }
