"""Example DeepRacer reward files shipped with pitlane (copy one to start your own): the recipe templates in
`contracts/reward_templates`. `follow_centerline.py` is DeepRacer's first documented example; the benchmark
uses it as "a Python DeepRacer reward function"."""

from contracts.recipe import templates_dir

EXAMPLES_DIR = templates_dir()
FOLLOW_CENTERLINE = EXAMPLES_DIR / "follow_centerline.py"
