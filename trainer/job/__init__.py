"""A console training job: `python -m trainer.job [--check] job.json` (see `__main__`).

| module | job |
|---|---|
| `folder.py` | the job folder's files: job.json, STOP, run/, out/ (recipe.toml, reward.py, progress.jsonl, result.json, check.json) |
| `check.py` | `--check`: the recipe's problems by field and line, into out/check.json (no torch) |
| `run.py` | the training job, start to result.json, and which failures are the racer's to fix |
| `preload.py` | what is imported and built before `trainer.guard.lock_down` |
| `training.py` | training supervised by the job (progress lines, stop file), directly or by distillation |
| `deadline_env.py` | a `trainer.guard.deadline` around each step of the training cars |
| `finish.py` | export into out/, the exported model's evaluation (evaluation.png, replay.json), result.json |
| `reasons.py` | failures as reasons a racer can act on: the reward function's line, its timeouts |

Importing this package loads nothing heavy: `--check` must answer quickly.
"""
