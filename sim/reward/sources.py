"""Where an environment's rewards come from: a built-in name, a DeepRacer reward file, or a Python callable.

- A built-in name (`centerline`, ...) or a `@batched_reward` callable: called once per step for all cars.
- A path to a DeepRacer `.py` file: one private copy of the module per car (module-level state stays per car,
  as when every DeepRacer car had its own worker), called with a params dict per car per step.
- Any other callable: treated as a DeepRacer `reward_function(params: dict) -> float`, shared by all cars.
Every reward is checked: None, NaN, inf, |r| > 1e5 or an exception stops with an error naming the function,
the line and the params (RewardFunctionError).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import RewardFunctionError
from sim.measure import Measurements
from sim.reward.builtin import BUILTIN_REWARDS, BatchedRewardFn
from sim.reward.params import params_dicts
from sim.reward.python_file import MAX_ABS_REWARD, RewardFile, format_params

RewardSpec = str | Path | Callable[..., Any] | None


class RewardSource:
    """Gives the rewards (n,) float64 of one step; `bind(n)` once before the first call."""

    name: str = "reward"
    is_batched: bool = True

    def bind(self, n: int) -> None:
        """Prepare for n cars."""

    def __call__(self, params: Measurements) -> np.ndarray:
        raise NotImplementedError

    def one(self, params: Measurements) -> float:
        """The reward of the single environment's car, from params in Python numbers (`SCALARS`)."""
        return float(self(params)[0])  # per-car rewards read `params_dicts(params)`, which both kinds give


class BatchedReward(RewardSource):
    """A batched function, checked for shape and for values DeepRacer would refuse."""

    def __init__(self, fn: BatchedRewardFn, name: str, *, trusted: bool = False) -> None:
        self._fn = fn
        self.name = name
        self._trusted = trusted  # built-ins are tested to return finite (n,) arrays; skip the checks

    def one(self, params: Measurements) -> float:
        if self._trusted:  # the built-ins run on Python numbers too (they read `params.m`)
            return float(self._fn(params))
        return float(self(params.as_arrays())[0])  # users' batched rewards always get arrays

    def __call__(self, params: Measurements) -> np.ndarray:
        if self._trusted:
            return self._fn(params)
        out = np.asarray(self._fn(params), dtype=np.float64)
        if out.shape != (params.n,):
            out = np.broadcast_to(out, (params.n,)) if out.ndim == 0 else out
            if out.shape != (params.n,):
                raise RewardFunctionError(
                    f"batched reward {self.name} returned shape {out.shape}; expected ({params.n},), one per car"
                )
        bad = ~np.isfinite(out) | (np.abs(out) > MAX_ABS_REWARD)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RewardFunctionError(
                f"batched reward {self.name} returned {out[i]!r} for car {i}; expected a finite number with "
                f"|r| <= {MAX_ABS_REWARD:g}. Params of that car:\n{format_params(params_dicts(params)[i])}"
            )
        return out


class PythonFileReward(RewardSource):
    """A DeepRacer reward file with one module instance per car."""

    is_batched = False

    def __init__(self, file: RewardFile) -> None:
        self._file = file
        self._instances: list[Callable[[dict[str, Any]], float]] = []
        self.name = str(file.path)

    def bind(self, n: int) -> None:
        self._instances = [self._file.instance() for _ in range(n)]

    def __call__(self, params: Measurements) -> np.ndarray:
        return np.fromiter(
            (f(d) for f, d in zip(self._instances, params_dicts(params), strict=True)),
            dtype=np.float64,
            count=params.n,
        )


class CallableReward(RewardSource):
    """A plain `reward_function(params: dict) -> float` callable shared by all cars."""

    is_batched = False

    def __init__(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        self._fn = fn
        self.name = getattr(fn, "__qualname__", repr(fn))

    def __call__(self, params: Measurements) -> np.ndarray:
        return np.fromiter((self._checked(d) for d in params_dicts(params)), dtype=np.float64, count=params.n)

    def _checked(self, d: dict[str, Any]) -> float:
        try:
            value = float(self._fn(d))
        except Exception as exc:
            raise RewardFunctionError(
                f"reward function {self.name} failed: {exc!r}\n{format_params(d)}"
            ) from exc
        if not math.isfinite(value) or abs(value) > MAX_ABS_REWARD:
            raise RewardFunctionError(
                f"reward function {self.name} returned {value!r}; expected a finite number with |r| <= "
                f"{MAX_ABS_REWARD:g}\n{format_params(d)}"
            )
        return value


def resolve_reward(spec: RewardSpec) -> RewardSource:
    """A RewardSource from a built-in name, a path to a DeepRacer .py file, or a callable (default: centerline)."""
    if spec is None:
        spec = "centerline"
    if callable(spec):
        if getattr(spec, "__pitlane_batched__", False):
            return BatchedReward(spec, getattr(spec, "__qualname__", "batched reward"))
        return CallableReward(spec)
    text = str(spec)
    if text in BUILTIN_REWARDS:
        return BatchedReward(BUILTIN_REWARDS[text], text, trusted=True)
    if text.endswith(".py") or Path(text).exists():
        return PythonFileReward(RewardFile.load(Path(text)))
    raise RewardFunctionError(
        f"reward {text!r}: not a built-in reward ({', '.join(BUILTIN_REWARDS)}) and not a path to a .py file "
        "defining reward_function(params)"
    )
