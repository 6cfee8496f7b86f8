"""RewardFile / RewardInstance: loading DeepRacer reward files, per-car module state, and clear failures."""

from __future__ import annotations

import itertools
import math
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sim.errors import RewardFunctionError, SimError
from sim.reward.params import no_objects
from sim.reward.python_file import RewardFile, RewardInstance, format_params
from tests.deepracer_files import PARAM_KEYS, REWARD_DIR, example_reward_files


def oval_waypoints(n: int = 119, a: float = 3.5, b: float = 2.0) -> list[tuple[float, float]]:
    """A closed centre line of n points (the closing point repeated), counter-clockwise."""
    pts = [
        (a * math.cos(2 * math.pi * i / (n - 1)), b * math.sin(2 * math.pi * i / (n - 1))) for i in range(n)
    ]
    pts[-1] = pts[0]
    return pts


def make_params(**overrides: Any) -> dict[str, Any]:
    """A complete, plausible DeepRacer params dict: the car a little left of the centre line, on track."""
    waypoints = oval_waypoints()
    prev_i, next_i = 10, 11
    (x0, y0), (x1, y1) = waypoints[prev_i], waypoints[next_i]
    heading = math.degrees(math.atan2(y1 - y0, x1 - x0))
    track_length = sum(math.dist(p, q) for p, q in itertools.pairwise(waypoints))
    params: dict[str, Any] = {
        "all_wheels_on_track": True,
        "x": (x0 + x1) / 2 - 0.05,
        "y": (y0 + y1) / 2,
        "heading": heading,
        "distance_from_center": 0.05,
        "is_left_of_center": True,
        "progress": 8.4,
        "steps": 12.0,
        "speed": 1.5,
        "steering_angle": 10.0,
        "track_width": 0.762,
        "track_length": track_length,
        "waypoints": waypoints,
        "closest_waypoints": [prev_i, next_i],
        "is_reversed": False,
        "is_offtrack": False,
        "projection_distance": 1.49,
        "sim_time": 0.8,
        **no_objects(),
    }
    params.update(overrides)
    return params


def write(tmp_path: Path, body: str, name: str = "reward.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip("\n"))
    return path


def load_instance(tmp_path: Path, body: str, name: str = "reward.py") -> RewardInstance:
    return RewardFile.load(write(tmp_path, body, name)).instance()


# -- DeepRacer-style example files --------------------------------------------------------------------------


def test_params_helper_has_every_deepracer_key() -> None:
    assert set(make_params()) == PARAM_KEYS


def test_every_example_loads_and_runs() -> None:
    examples = example_reward_files()
    assert len(examples) >= 3, examples
    variants = [
        make_params(),
        make_params(distance_from_center=0.3, is_left_of_center=False, heading=-170.0),
        make_params(all_wheels_on_track=False, is_offtrack=True, distance_from_center=0.6),
        make_params(steps=2.0, progress=0.0),
    ]
    for path in examples:
        reward_file = RewardFile.load(path)
        assert str(path.resolve()) in reward_file.describe()
        instance = reward_file.instance()
        for params in variants:
            value = instance(params)
            assert type(value) is float, path
            assert math.isfinite(value) and abs(value) <= 1e5, (path, value)


def test_example_values() -> None:
    bands = RewardFile.load(REWARD_DIR / "centre_bands.py").instance()
    assert bands(make_params(distance_from_center=0.05)) == 1.0
    assert bands(make_params(distance_from_center=0.15)) == 0.5
    assert bands(make_params(distance_from_center=0.5)) == 1e-3
    heading = RewardFile.load(REWARD_DIR / "heading_and_speed.py").instance()
    aligned = heading(make_params())
    assert aligned > heading(make_params(heading=make_params()["heading"] + 45.0))
    assert heading(make_params(is_offtrack=True)) == 1e-3


def test_broken_returns_none() -> None:
    path = REWARD_DIR / "broken_returns_none.py"
    instance = RewardFile.load(path).instance()
    assert instance(make_params(distance_from_center=0.05)) == 1.0
    previous_profiler = sys.getprofile()
    with pytest.raises(RewardFunctionError) as info:
        instance(make_params(distance_from_center=0.3))
    assert sys.getprofile() is previous_profiler
    err = info.value
    message = str(err)
    # Python 3.11 attributes the implicit `return None` after the `if` to line 3 (the `if`), not line 4.
    assert err.lineno in (3, 4)
    if sys.version_info[:2] == (3, 11):
        assert err.lineno == 3
    assert err.path == path.resolve()
    assert f'File "{path.resolve()}", line {err.lineno}' in message
    assert "broken_returns_none.py" in message.splitlines()[0]
    assert "None" in message.splitlines()[0]
    assert "without a `return` statement" in message
    assert "re-running the same call once" in message
    assert "distance_from_center: 0.3000" in message
    assert "waypoints: <list of 119 (x, y) points>" in message
    assert len(message.splitlines()) < 60


# -- module state is per instance ----------------------------------------------------------------------


def test_module_state_is_per_instance() -> None:
    reward_file = RewardFile.load(REWARD_DIR / "progress_gain.py")
    fast, slow = reward_file.instance(), reward_file.instance()
    fast_rewards, slow_rewards = [], []
    for step in range(2, 8):
        fast_rewards.append(fast(make_params(steps=float(step), progress=2.0 * (step - 2))))
        slow_rewards.append(slow(make_params(steps=float(step), progress=0.5 * (step - 2))))
    assert fast_rewards[1:] == pytest.approx([20.001] * 5)
    assert slow_rewards[1:] == pytest.approx([5.001] * 5)
    assert fast.module is not slow.module
    assert fast.module.last_progress == pytest.approx(10.0)
    assert slow.module.last_progress == pytest.approx(2.5)
    assert fast.module.last_steps == slow.module.last_steps == 7.0


def test_instance_module_is_private(tmp_path: Path) -> None:
    path = write(tmp_path, "def reward_function(params):\n    return 1.0\n", "my_reward.py")
    instance = RewardFile.load(path).instance()
    assert instance.module.__name__ == "my_reward"
    assert instance.module.__file__ == str(path.resolve())
    assert all(m is not instance.module for m in list(sys.modules.values()))
    assert "my_reward" not in sys.modules


def test_top_level_state_with_imports(tmp_path: Path) -> None:
    instance = load_instance(
        tmp_path,
        """
        import math
        import numpy as np

        HISTORY = []
        SCALE = math.sqrt(4.0)

        def reward_function(params):
            HISTORY.append(params["speed"])
            return np.clip(np.mean(HISTORY) * SCALE, 0.0, 100.0)
        """,
    )
    assert instance(make_params(speed=1.0)) == pytest.approx(2.0)
    assert instance(make_params(speed=3.0)) == pytest.approx(4.0)
    assert type(instance(make_params(speed=2.0))) is float
    assert instance.module.HISTORY == [1.0, 3.0, 2.0]


def test_many_instances_fast_and_independent(tmp_path: Path) -> None:
    reward_file = RewardFile.load(
        write(
            tmp_path,
            """
            count = 0

            def reward_function(params):
                global count
                count += 1
                return float(count)
            """,
        )
    )
    start = time.perf_counter()
    instances = [reward_file.instance() for _ in range(1024)]
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"1,024 instances took {elapsed:.3f} s"
    params = make_params()
    for _ in range(3):
        instances[7](params)
    assert instances[7](params) == 4.0
    assert instances[8](params) == 1.0
    assert len({id(inst.module) for inst in instances}) == 1024
    assert sum(inst.module.count for inst in instances) == 5


# -- failures inside the function ------------------------------------------------------------------------


def test_exception_names_file_and_raising_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        def helper(v):
            return 1.0 / v

        def reward_function(params):
            speed = params["speed"]
            return helper(speed - speed)
        """,
    )
    instance = RewardFile.load(path).instance()
    with pytest.raises(RewardFunctionError) as info:
        instance(make_params())
    err = info.value
    message = str(err)
    assert err.lineno == 2  # the innermost frame in the reward file: inside helper
    assert f'File "{path.resolve()}", line 2' in message
    assert "return 1.0 / v" in message
    assert "ZeroDivisionError" in message
    assert "speed: 1.5000" in message
    assert isinstance(err.__cause__, ZeroDivisionError)  # chained: the original traceback is kept
    assert isinstance(err, SimError) and isinstance(err, RuntimeError)


def test_exception_in_library_points_at_calling_line(tmp_path: Path) -> None:
    instance = load_instance(
        tmp_path,
        """
        import math

        def reward_function(params):
            return math.sqrt(-params["speed"])
        """,
    )
    with pytest.raises(RewardFunctionError, match="ValueError") as info:
        instance(make_params())
    assert info.value.lineno == 4
    assert isinstance(info.value.__cause__, ValueError)


def test_key_error_hint(tmp_path: Path) -> None:
    instance = load_instance(tmp_path, "def reward_function(params):\n    return params['sped']\n")
    with pytest.raises(RewardFunctionError, match=r"did you mean 'speed'\?") as info:
        instance(make_params())
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.lineno == 2


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("float('nan')", "NaN"),
        ("float('inf')", "infinite"),
        ("-float('inf')", "infinite"),
        ("1e6", "outside the allowed range"),
        ("-100001", "outside the allowed range"),
        ("10 ** 400", "outside the allowed range"),
        ("'1.0'", "returned a str ('1.0'), not a number"),
        ("None", "returned None"),
        ("[1.0]", "returned a list"),
        ("1 + 2j", "complex"),
        ("np.complex128(1.0)", "complex"),
        ("np.float64('nan')", "NaN"),
        ("np.float32(1e6)", "outside the allowed range"),
        ("np.array([1.0, 2.0])", "not a number"),
        ("object()", "not a number"),
    ],
)
def test_bad_return_values(tmp_path: Path, expression: str, expected: str) -> None:
    path = write(
        tmp_path,
        f"""
        import numpy as np

        def reward_function(params):
            if params["speed"] > 100:
                return 1.0
            return {expression}
        """,
    )
    instance = RewardFile.load(path).instance()
    with pytest.raises(RewardFunctionError) as info:
        instance(make_params())
    message = str(info.value)
    assert expected in message
    assert info.value.lineno == 6
    assert f'File "{path.resolve()}", line 6' in message
    assert "the value came from the `return` at line 6" in message
    assert "steering_angle: 10.0000" in message
    assert len(message.splitlines()) < 60


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1", 1.0),
        ("True", 1.0),
        ("False", 0.0),
        ("-3", -3.0),
        ("0.25", 0.25),
        ("1e5", 1e5),
        ("-1e5", -1e5),
        ("100000", 1e5),
        ("np.float64(0.5)", 0.5),
        ("np.float32(0.5)", 0.5),
        ("np.int64(2)", 2.0),
        ("np.bool_(True)", 1.0),
        ("np.clip(3.0, 0.0, 1.0)", 1.0),
        ("np.array(0.75)", 0.75),
    ],
)
def test_accepted_return_values(tmp_path: Path, expression: str, expected: float) -> None:
    instance = load_instance(
        tmp_path,
        f"""
        import numpy as np

        def reward_function(params):
            return {expression}
        """,
    )
    for _ in range(3):  # the first call of a numpy type takes the slow path, later ones the fast path
        value = instance(make_params())
        assert type(value) is float
        assert value == expected


def test_rerun_that_behaves_differently_falls_back_to_def_line(tmp_path: Path) -> None:
    instance = load_instance(
        tmp_path,
        """
        calls = 0

        def reward_function(params):
            global calls
            calls += 1
            if calls == 1:
                return None
            return 1.0
        """,
    )
    with pytest.raises(RewardFunctionError) as info:
        instance(make_params())
    message = str(info.value)
    assert info.value.lineno == 3
    assert "different outcome (succeeded)" in message
    assert "showing the def line" in message


def test_message_is_compact_with_many_keys(tmp_path: Path) -> None:
    instance = load_instance(tmp_path, "def reward_function(params):\n    return None\n")
    params = make_params(**{f"extra_{i:03d}": i / 3 for i in range(100)})
    with pytest.raises(RewardFunctionError) as info:
        instance(params)
    lines = str(info.value).splitlines()
    assert len(lines) < 60
    assert any("more keys" in line for line in lines)


def test_format_params_is_deterministic_and_compact() -> None:
    params = make_params(objects_location=[[1.0, 2.0], [3.0, 4.0]], objects_speed=[0.5, 0.25])
    text = format_params(params)
    shuffled = dict(reversed(list(params.items())))
    assert format_params(shuffled) == text
    lines = text.splitlines()
    assert len(lines) == len(params)
    assert [line.split(":")[0].strip() for line in lines] == sorted(params)
    assert "  waypoints: <list of 119 (x, y) points>" in lines
    assert "  closest_waypoints: [10, 11]" in lines
    assert "  objects_location: [[1.0000, 2.0000], [3.0000, 4.0000]]" in lines
    assert "  all_wheels_on_track: True" in lines
    assert "  heading: " in text and re.search(r"  speed: 1\.5000$", text, flags=re.MULTILINE)


# -- load errors ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RewardFunctionError, match="not found") as info:
        RewardFile.load(tmp_path / "nope.py")
    assert "nope.py" in str(info.value)


def test_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        def reward_function(params):
            if params["speed"] > 1
                return 1.0
            return 0.5
        """,
    )
    with pytest.raises(RewardFunctionError) as info:
        RewardFile.load(path)
    message = str(info.value)
    assert str(path.resolve()) in message
    assert "line 2" in message
    assert 'if params["speed"] > 1' in message
    assert info.value.lineno == 2
    assert isinstance(info.value.__cause__, SyntaxError)


def test_missing_reward_function(tmp_path: Path) -> None:
    path = write(tmp_path, "def reward_fn(params):\n    return 1.0\n")
    with pytest.raises(RewardFunctionError, match="does not define reward_function") as info:
        RewardFile.load(path)
    assert "did you mean 'reward_fn'" in str(info.value)
    assert str(path.resolve()) in str(info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("reward_function = 1.0\n", "not a function"),
        ("def reward_function(params, car):\n    return 1.0\n", "exactly one positional parameter"),
        ("def reward_function():\n    return 1.0\n", "exactly one positional parameter"),
        ("def reward_function(*, params):\n    return 1.0\n", "exactly one positional parameter"),
        ("def reward_function(params):\n    yield 1.0\n", "not a generator or async function"),
        ("async def reward_function(params):\n    return 1.0\n", "not a generator or async function"),
    ],
)
def test_unusable_reward_function(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(RewardFunctionError, match=expected) as info:
        RewardFile.load(path)
    assert str(path.resolve()) in str(info.value)


def test_optional_extra_parameters_are_fine(tmp_path: Path) -> None:
    instance = load_instance(tmp_path, "def reward_function(params, scale=2.0):\n    return scale\n")
    assert instance(make_params()) == 2.0


def test_top_level_exception(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import math

        TABLE = {"a": 1}
        LIMIT = TABLE["b"]

        def reward_function(params):
            return 1.0
        """,
    )
    with pytest.raises(RewardFunctionError) as info:
        RewardFile.load(path)
    message = str(info.value)
    assert "top level" in message and "KeyError" in message
    assert f'File "{path.resolve()}", line 4' in message
    assert info.value.lineno == 4
    assert isinstance(info.value.__cause__, KeyError)


def test_code_is_compiled_once(tmp_path: Path) -> None:
    path = write(tmp_path, "def reward_function(params):\n    return 0.5\n")
    reward_file = RewardFile.load(path)
    path.unlink()  # instances never re-read the file
    instance = reward_file.instance()
    assert instance(make_params()) == 0.5
    assert instance.module.reward_function.__code__.co_filename == str(path.resolve())
    assert reward_file.describe().startswith(f"{path.resolve()} (2 lines")
