"""`pitlane bench races`: a class round of a virtual race, from the deadline until every submission is ranked.

Built here, not downloaded: one `state` policy is trained on reinvent_base (the default recipe) and exported
(fp32 ONNX + model card); the round's other submissions are copies of it whose weights carry Gaussian noise
of growing size, so they drive (and rank) differently, each a distinct file with its own card. Each
submission is one evaluation job (`league_server.jobs.engine`: check, 3 laps through the car's ONNX path, in
its own sandboxed process), exactly as `pitlane league serve` runs them.

Timed: the whole round with 1 and with 2 local worker processes, and through a Ray head (one started here on
127.0.0.1 unless an address is given): seconds, evaluations per minute, 2 workers against 1, and Ray's
overhead per evaluation against the 2 local workers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contracts.model_card import load_card
from contracts.race import LapRecord, rank_key, sortable
from contracts.virtual_race import VirtualRaceSpec
from league_server.broker.embedded import free_port
from league_server.jobs.engine import JobRun, LocalWorkers, RayWorkers
from league_server.jobs.sandbox import Limits
from league_server.jobs.uploads import write_job
from trainer.export.card import model_file

#: the issue's goal on a 2-core machine: a round of 30 ranked within 60 s; 2 workers at least 1.7x one
ROUND_BUDGET_S = 60.0
SPEEDUP_TARGET = 1.7
SPEC = VirtualRaceSpec(track="reinvent_base", seed=11)  # 3 laps, 2 s off-track penalty, best lap


@dataclass
class RoundResult:
    """One round on one engine: wall seconds from the first submission queued to the last ranked."""

    engine: str
    seconds: float
    ranked: int
    failed: int
    order: list[str]

    @property
    def evaluations_per_minute(self) -> float:
        return 60.0 * (self.ranked + self.failed) / self.seconds if self.seconds > 0 else 0.0


def build_submissions(folder: Path, count: int, *, train_steps: int = 150_000) -> list[Path]:
    """`count` submission folders (model.onnx + model.json) in `folder`: a trained export and noisy copies."""
    from trainer.config import RunConfig
    from trainer.export.pipeline import ExportSettings, export_run
    from trainer.train import train

    run = folder / "run"
    train(RunConfig(track=SPEC.track, total_steps=train_steps), run, progress=False)
    export = folder / "export"
    settings = ExportSettings(calibration_frames=100, agreement_frames=200, eval_laps=1, latency_seconds=0.05)
    export_run(run, export, settings)
    rng = np.random.default_rng(0)
    return [_noisy_copy(export, folder / f"racer{i:02d}", 0.03 * i, rng) for i in range(count)]


def _noisy_copy(export: Path, dest: Path, noise: float, rng: np.random.Generator) -> Path:
    """`export`'s fp32 model with N(0, noise x |w| mean) added to every float weight; its card names the file."""
    import onnx
    from onnx import numpy_helper

    dest.mkdir(parents=True)
    model = onnx.load(export / "model.onnx")
    if noise > 0:
        for init in model.graph.initializer:
            w = numpy_helper.to_array(init)
            if w.dtype == np.float32 and w.size > 1:
                noisy = w + rng.normal(0.0, noise * float(np.mean(np.abs(w))), w.shape).astype(np.float32)
                init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    onnx.save(model, dest / "model.onnx")
    card = load_card(export / "model.json")
    card.model_copy(update={"files": (model_file(dest / "model.onnx", "fp32"),)}).write(dest / "model.json")
    return dest


def run_round(submissions: list[Path], engine: LocalWorkers | RayWorkers, work: Path) -> RoundResult:
    """Queue every submission as a job at once (the deadline), wait for all, rank the finished ones."""
    jobs = []
    for sub in submissions:
        folder = work / sub.name
        folder.mkdir(parents=True)
        card = json.loads((sub / "model.json").read_text(encoding="utf-8"))
        # checked: in a league every upload is checked when it is submitted, before the deadline
        jobs.append(write_job(folder, (sub / "model.onnx").read_bytes(), card, SPEC, checked=True))
    limits = Limits(SPEC.limits.cpu_s, SPEC.limits.memory_mb, SPEC.limits.wall_s)
    started = time.perf_counter()
    runs = [f.result() for f in [engine.submit(job, limits) for job in jobs]]
    seconds = time.perf_counter() - started
    return RoundResult(engine.describe(), seconds, *_ranking(runs))


def _ranking(runs: list[JobRun]) -> tuple[int, int, list[str]]:
    """(ranked, failed, names in ranking order) by the race's rules, as the leaderboard ranks."""
    rules = SPEC.race_rules()
    keyed = []
    for run in runs:
        if run.failure is None:
            keyed.append((sortable(rank_key([LapRecord(**lap) for lap in run.outcome["laps"]], rules)), run))
    keyed.sort(key=lambda item: item[0])
    return len(keyed), len(runs) - len(keyed), [run.job_dir.name for _, run in keyed]


def bench_races(
    *,
    submissions: int = 30,
    ray_address: str | None = None,
    use_ray: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the round, run it on 1 and 2 local workers and on Ray; the figures as one JSON-ready dict."""
    stage = on_stage or (lambda _text: None)
    with tempfile.TemporaryDirectory(prefix="pitlane-bench-races-") as tmp:
        root = Path(tmp)
        stage(f"training and exporting the policy behind {submissions} submissions")
        subs = build_submissions(root / "submissions", submissions)
        rounds: dict[str, RoundResult] = {}
        for workers in (1, 2):
            stage(f"the round on {workers} local worker(s)")
            engine = LocalWorkers(workers)
            try:
                rounds[f"local{workers}"] = run_round(subs, engine, root / f"local{workers}")
            finally:
                engine.close()
        if use_ray:
            stage("the round through Ray")
            with local_ray_head(ray_address) as address:
                engine = RayWorkers(address)
                try:
                    rounds["ray"] = run_round(subs, engine, root / "ray")
                finally:
                    engine.close()
    return _figures(submissions, rounds)


def _figures(submissions: int, rounds: dict[str, RoundResult]) -> dict[str, Any]:
    one, two, ray = rounds["local1"], rounds["local2"], rounds.get("ray")
    return {
        "submissions": submissions,
        "ranked": two.ranked,
        "failed": two.failed,
        "seconds_1_worker": round(one.seconds, 2),
        "seconds_2_workers": round(two.seconds, 2),
        "speedup_2_vs_1": round(one.seconds / two.seconds, 3),
        "evaluations_per_minute_1_worker": round(one.evaluations_per_minute, 1),
        "evaluations_per_minute_2_workers": round(two.evaluations_per_minute, 1),
        "same_ranking_1_and_2_workers": one.order == two.order,
        "ray_seconds": None if ray is None else round(ray.seconds, 2),
        "ray_seconds_per_eval_overhead": None
        if ray is None
        else round((ray.seconds - two.seconds) / submissions, 3),
        "same_ranking_ray": None if ray is None else ray.order == two.order,
        "round_budget_s": ROUND_BUDGET_S,
        "speedup_target": SPEEDUP_TARGET,
        "top3": two.order[:3],
    }


@contextmanager
def local_ray_head(address: str | None = None) -> Iterator[str]:
    """`address`, or a Ray head started on 127.0.0.1 with 2 CPUs for the round (stopped afterwards)."""
    if address is not None:
        yield address
        return
    ray_cli = Path(sys.executable).parent / "ray"
    port = free_port("127.0.0.1")
    start = [str(ray_cli), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], capture_output=True, timeout=120)
