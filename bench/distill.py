"""`pitlane bench distill`: how long a default distillation (`trainer.distill.distill`) takes per DeepRacer track.

For each track the default `state` recipe is trained as the teacher first (not timed), then distilled into
the camera student with the default settings (timed: wall and CPU seconds), in a temporary directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.config import DistillSettings, RunConfig
from trainer.distill import RichDistillProgress, distill

#: `pitlane bench distill`'s target: a default distillation within 5 minutes on a 2-core laptop
DISTILL_BUDGET_S = 300.0
DEEPRACER_TRACKS = ("reinvent_base", "reInvent2019_track", "2022_summit_speedway")


@dataclass
class DistillBenchRow:
    """One track of `bench_distill`: the teacher's training, then a default distillation timed (wall and
    this process's CPU seconds: on a shared machine CPU s is the steadier figure), and how the student drove."""

    track: str
    teacher_wall_s: float
    distill_wall_s: float
    distill_cpu_s: float
    best_round: int | None
    best_eval_lap_s: float | None
    clean_laps_last_round: int

    @property
    def over_budget(self) -> float:
        """Wall time / the 5-minute budget (<= 1 meets it)."""
        return self.distill_wall_s / DISTILL_BUDGET_S

    @property
    def cpu_share(self) -> float:
        """CPU s / wall s: about 1 on an idle machine, less when other processes take the cores."""
        return self.distill_cpu_s / self.distill_wall_s if self.distill_wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "over_budget": self.over_budget, "cpu_share": self.cpu_share,
                "budget_s": DISTILL_BUDGET_S}  # fmt: skip


def bench_distill(
    tracks: tuple[str, ...] = DEEPRACER_TRACKS,
    *,
    teacher_steps: int = 300_000,
    settings: DistillSettings | None = None,
    on_row: Callable[[DistillBenchRow], None] | None = None,
    show_progress: bool = False,
) -> list[DistillBenchRow]:
    """For each track: train the default `state` recipe for `teacher_steps` car-steps, then distil it with
    `settings` (default: the defaults), in a temporary directory. Only the distillation is timed;
    `show_progress` draws both on stderr."""
    import tempfile

    from trainer.train import train

    rows: list[DistillBenchRow] = []
    with tempfile.TemporaryDirectory(prefix="pitlane-bench-distill-") as tmp:
        for track in tracks:
            t0 = time.monotonic()
            teacher = Path(tmp) / f"teacher-{track}"
            train(RunConfig(track=track, total_steps=teacher_steps), teacher, progress=show_progress)
            teacher_s = time.monotonic() - t0
            wall0, cpu0 = time.monotonic(), time.process_time()
            shown = RichDistillProgress((settings or DistillSettings()).rounds) if show_progress else None
            result = distill(teacher, Path(tmp) / f"student-{track}", settings=settings, progress=shown)
            row = DistillBenchRow(
                track=track, teacher_wall_s=teacher_s, distill_wall_s=time.monotonic() - wall0,
                distill_cpu_s=time.process_time() - cpu0, best_round=result.best_round,
                best_eval_lap_s=result.best_eval_lap_s, clean_laps_last_round=result.rounds[-1].eval_clean_laps,
            )  # fmt: skip
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows
