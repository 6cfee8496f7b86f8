"""Example DeepRacer reward files shipped with pitlane (copy one to start your own).

`follow_centerline.py` is DeepRacer's first documented example, unchanged in spirit; the benchmark uses it as
"a Python DeepRacer reward function".
"""

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent
FOLLOW_CENTERLINE = EXAMPLES_DIR / "follow_centerline.py"
