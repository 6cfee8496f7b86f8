"""A DeepRacer user's reward file: a ``.py`` defining ``reward_function(params) -> float``.

``RewardFile.load(path)`` reads and compiles the source once (with the file's absolute name, so tracebacks
show it) and executes it once to check it: it must define a callable ``reward_function`` that takes one
positional argument. ``RewardFile.instance()`` executes the compiled code in a fresh module object that is
registered nowhere, so module-level state (globals, classes used as memory) is private to that instance —
the simulator makes one instance per simulated car, as DeepRacer gave every car its own worker process.
Modules the file imports (``math``, ``random``, ``numpy``, ...) are shared through ``sys.modules`` as usual.

``RewardInstance.__call__(params)`` calls the function and returns the reward as a ``float``. Anything
``float()`` accepts is accepted (bool, int, float, numpy scalars), except strings and complex numbers; the
value must be finite with ``|r| <= 1e5``. Any failure raises ``RewardFunctionError`` naming the file, the
line, what went wrong and the params of the failing call, chained to the original exception. To find the
line of a bad return value the same call is re-run once under ``sys.setprofile`` — on the failure path
only, the hot path is a call, a type test and a range check.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib.util
import inspect
import math
import numbers
import sys
import types
from pathlib import Path
from typing import Any

from sim.errors import RewardFunctionError

__all__ = ["MAX_ABS_REWARD", "RewardFile", "RewardInstance", "format_params"]

MAX_ABS_REWARD = 1e5
"""DeepRacer's limit: a reward with ``|r| > 1e5`` (or NaN, or inf) stops training with an error."""

FUNCTION_NAME = "reward_function"

# Exact result types (besides float and int) that take the fast conversion path: `float(x)` of these never
# raises. numpy bool/int/float scalar types are added the first time the slow path accepts one.
_FAST_TYPES: set[type] = {bool}

_MAX_PARAM_KEYS = 40  # params lines in an error message (DeepRacer sends 27 keys)
_MAX_PARAM_LINE = 160  # characters per rendered param line
_MAX_INLINE_ITEMS = 8  # longer lists are summarised


class RewardFile:
    """A reward file's source, compiled once. Make one ``RewardInstance`` per simulated car."""

    __slots__ = ("_lines", "_return_spans", "code", "line_count", "path", "sha256", "source")

    def __init__(self, path: Path, source: str, code: types.CodeType) -> None:
        self.path = path
        self.source = source
        self.code = code
        self._lines = source.splitlines()
        self.line_count = len(self._lines)
        self.sha256 = hashlib.sha256(source.encode("utf-8")).hexdigest()
        self._return_spans: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None

    @classmethod
    def load(cls, path: str | Path) -> RewardFile:
        """Read, compile and check a reward file; any problem is a ``RewardFunctionError`` naming the file."""
        resolved = Path(path).expanduser().resolve()
        filename = str(resolved)
        try:
            raw = resolved.read_bytes()
        except FileNotFoundError as exc:
            raise _error(f"reward file not found: {filename}", resolved, None) from exc
        except OSError as exc:
            raise _error(f"cannot read reward file {filename}: {exc}", resolved, None) from exc
        try:
            source = importlib.util.decode_source(raw)  # honours a coding cookie, normalises newlines
        except (UnicodeDecodeError, SyntaxError) as exc:
            raise _error(
                f"reward file {filename} is not valid Python source text: {exc}", resolved, None
            ) from exc
        try:
            code = compile(source, filename, "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise _error(_syntax_error_message(filename, exc), resolved, exc.lineno) from exc
        except ValueError as exc:  # e.g. null bytes in the source (SyntaxError from Python 3.12)
            raise _error(f"reward file {filename} cannot be compiled: {exc}", resolved, None) from exc
        reward_file = cls(resolved, source, code)
        reward_file._check_function(reward_file._execute().__dict__[FUNCTION_NAME])
        return reward_file

    def instance(self) -> RewardInstance:
        """Execute the compiled code in a fresh, private module and wrap its ``reward_function``."""
        return RewardInstance(self, self._execute())

    def describe(self) -> str:
        """One line for logs: the path, the line count and a short hash of the source."""
        return f"{self.path} ({self.line_count} lines, sha256 {self.sha256[:12]})"

    def __repr__(self) -> str:
        return f"RewardFile({str(self.path)!r})"

    # -- internals -------------------------------------------------------------------------------------

    @property
    def filename(self) -> str:
        """The name the source was compiled with (the absolute path): frames in this file carry it."""
        return self.code.co_filename

    def line_text(self, lineno: int | None) -> str | None:
        if lineno is None or not 1 <= lineno <= self.line_count:
            return None
        return self._lines[lineno - 1]

    def _execute(self) -> types.ModuleType:
        module = types.ModuleType(self.path.stem)
        module.__file__ = self.filename
        namespace = module.__dict__
        try:
            exec(self.code, namespace)
        except Exception as exc:
            lineno = _innermost_line(exc.__traceback__, self.filename)
            raise _error(
                f"reward file {self.path.name}: running its top level raised {_exception_summary(exc)}\n"
                + _location_lines(self, lineno).rstrip("\n"),
                self.path,
                lineno,
            ) from exc
        if FUNCTION_NAME not in namespace:
            defined = sorted(
                name for name, value in namespace.items() if callable(value) and not name.startswith("__")
            )
            close = difflib.get_close_matches(FUNCTION_NAME, defined, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            shown = ", ".join(defined[:10]) + (f", ... ({len(defined)} in all)" if len(defined) > 10 else "")
            raise _error(
                f"reward file {self.filename} does not define {FUNCTION_NAME}(params){hint}; "
                f"callables it defines: {shown or 'none'}",
                self.path,
                None,
            )
        return module

    def _check_function(self, fn: Any) -> None:
        where = f"reward file {self.filename}"
        code = getattr(fn, "__code__", None)
        lineno = None
        if code is not None and code.co_filename == self.filename:
            lineno = code.co_firstlineno
            where += f", line {lineno}"
        if not callable(fn):
            raise _error(
                f"{where}: {FUNCTION_NAME} is a {type(fn).__name__} ({_short_repr(fn)}), not a function",
                self.path,
                None,
            )
        if (
            inspect.isgeneratorfunction(fn)
            or inspect.iscoroutinefunction(fn)
            or inspect.isasyncgenfunction(fn)
        ):
            raise _error(
                f"{where}: {FUNCTION_NAME} must be a plain function returning a number, "
                "not a generator or async function",
                self.path,
                lineno,
            )
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins have no signature: nothing to check
            return
        try:
            signature.bind(None)
        except TypeError as exc:
            raise _error(
                f"{where}: {FUNCTION_NAME} must take exactly one positional parameter (params), "
                f"but its signature is {FUNCTION_NAME}{signature} ({exc})",
                self.path,
                lineno,
            ) from exc

    def _return_kind(self, lineno: int) -> str:
        """How a frame that returned at ``lineno`` returned: 'return', 'lambda' or 'fell off'."""
        if self._return_spans is None:
            returns: list[tuple[int, int]] = []
            lambdas: list[tuple[int, int]] = []
            try:
                tree = ast.parse(self.source)
            except SyntaxError:  # pragma: no cover - the source compiled
                tree = ast.Module(body=[], type_ignores=[])
            for node in ast.walk(tree):
                if isinstance(node, ast.Return | ast.Lambda):
                    span = (node.lineno, node.end_lineno or node.lineno)
                    (returns if isinstance(node, ast.Return) else lambdas).append(span)
            self._return_spans = (returns, lambdas)
        returns, lambdas = self._return_spans
        if any(lo <= lineno <= hi for lo, hi in returns):
            return "return"
        if any(lo <= lineno <= hi for lo, hi in lambdas):
            return "lambda"
        return "fell off"


class RewardInstance:
    """One car's private copy of a reward file's module. Call it with the params dict to get the reward."""

    __slots__ = ("_fn", "module", "reward_file")

    def __init__(self, reward_file: RewardFile, module: types.ModuleType) -> None:
        self.reward_file = reward_file
        self.module = module
        self._fn = module.__dict__[FUNCTION_NAME]

    def __call__(self, params: dict) -> float:
        """The reward for one step: a finite float with ``|r| <= 1e5``, or a ``RewardFunctionError``."""
        try:
            result = self._fn(params)
        except Exception as exc:
            raise self._raised_error(params, exc) from exc
        if type(result) is float:
            if -1e5 <= result <= 1e5:  # False for NaN and +-inf too
                return result
        elif type(result) in _FAST_TYPES:  # bool, numpy scalars
            value = float(result)
            if -1e5 <= value <= 1e5:
                return value
        elif type(result) is int and -100000 <= result <= 100000:  # float() of a huge int would raise
            return float(result)
        return self._slow_result(params, result)

    def describe(self) -> str:
        return self.reward_file.describe()

    def __repr__(self) -> str:
        return f"RewardInstance({str(self.reward_file.path)!r})"

    # -- failure path ----------------------------------------------------------------------------------

    def _slow_result(self, params: Any, result: Any) -> float:
        """Results the fast path did not accept: convert what is acceptable, else raise a located error."""
        value, problem, category = _check_result(result)
        if problem is None:
            return value
        lineno, note = self._locate_return(params, category)
        raise _error(
            f"reward function in {self.reward_file.path.name} {problem}\n"
            + _location_lines(self.reward_file, lineno, note)
            + _params_block(params),
            self.reward_file.path,
            lineno,
        )

    def _raised_error(self, params: Any, exc: Exception) -> RewardFunctionError:
        reward_file = self.reward_file
        lineno = _innermost_line(exc.__traceback__, reward_file.filename)
        note = None
        if lineno is None:
            lineno = self._def_line()
            note = "the exception was raised outside the reward file; showing the def line"
        hint = _key_error_hint(exc, params)
        return _error(
            f"reward function in {reward_file.path.name} raised {_exception_summary(exc)}\n"
            + _location_lines(reward_file, lineno, note)
            + (f"  hint: {hint}\n" if hint else "")
            + _params_block(params),
            reward_file.path,
            lineno,
        )

    def _def_line(self) -> int | None:
        code = getattr(self._fn, "__code__", None)
        if code is not None and code.co_filename == self.reward_file.filename:
            return code.co_firstlineno
        return None

    def _locate_return(self, params: Any, category: str) -> tuple[int | None, str]:
        """Re-run the same call once under a profile hook to see which line of the reward file returned.

        ``category`` is the kind of bad value the first call returned; if the re-run returns a different
        kind (or raises, or succeeds) the function depends on state, and the def line is shown instead.
        """
        filename = self.reward_file.filename
        outer: list[Any] = []  # the first frame entered in the reward file
        returned_at: list[int] = []

        def hook(frame: types.FrameType, event: str, arg: Any) -> None:
            if event == "call":
                if not outer and frame.f_code.co_filename == filename:
                    outer.append(frame)
            elif event == "return" and outer and frame is outer[0] and not returned_at:
                returned_at.append(frame.f_lineno)

        previous = sys.getprofile()
        sys.setprofile(hook)
        try:
            again = self._fn(params)
        except Exception as exc:  # noqa: BLE001 - any outcome of the user's code is reported, not raised
            again_category, outcome = "raised", f"raised {_exception_summary(exc)}"
        else:
            _, again_problem, again_category = _check_result(again)
            outcome = again_problem or "succeeded"
        finally:
            sys.setprofile(previous)
        outer.clear()  # drop the frame reference
        if again_category != category:
            return self._def_line(), (
                f"re-running the same call once to locate the line gave a different outcome ({outcome});\n"
                "showing the def line"
            )
        if not returned_at:
            return self._def_line(), "could not locate the returning line; showing the def line"
        lineno = returned_at[0]
        kind = self.reward_file._return_kind(lineno)
        if kind == "return":
            what = f"the value came from the `return` at line {lineno}"
        elif kind == "lambda":
            what = f"the value came from the lambda at line {lineno}"
        else:
            what = f"the function ended without a `return` statement; line {lineno} was the last line run"
        return lineno, f"{what}\n(line found by re-running the same call once under a profiler)"


# -- helpers -----------------------------------------------------------------------------------------------


def _check_result(result: Any) -> tuple[float, str | None, str]:
    """Convert a reward the fast path did not take.

    Returns (value, None, "ok") if acceptable, else (value or nan, what went wrong, a short category that
    stays the same when the same kind of bad value is returned again).
    """
    kind = type(result)
    if result is None:
        return math.nan, "returned None, not a number (does a branch end without `return <number>`?)", "none"
    if isinstance(result, str | bytes | bytearray):
        return math.nan, f"returned a {kind.__name__} ({_short_repr(result)}), not a number", "text"
    is_complex = isinstance(result, numbers.Complex) and not isinstance(result, numbers.Real)
    if is_complex or _dtype_kind(result) == "c":
        return math.nan, f"returned a complex number ({_short_repr(result)}), not a real number", "complex"
    try:
        value = float(result)
    except OverflowError:
        return math.inf, f"returned {_short_repr(result)}, outside the allowed range [-1e5, 1e5]", "range"
    except Exception as exc:  # noqa: BLE001 - a user type's __float__ may raise anything
        problem = (
            f"returned {_a(_type_name(result))} ({_short_repr(result)}), not a number: "
            f"float() raised {_exception_summary(exc)}"
        )
        return math.nan, problem, f"type {_type_name(result)}"
    shown = repr(value) if kind is float else f"{value!r} ({_a(_type_name(result))})"
    if math.isnan(value):
        return value, f"returned NaN: {shown}", "nan"
    if math.isinf(value):
        return value, f"returned an infinite value: {shown}", "inf"
    if abs(value) > MAX_ABS_REWARD:
        return value, f"returned {shown}, outside the allowed range [-1e5, 1e5]", "range"
    if (getattr(kind, "__module__", "") or "").startswith("numpy") and _dtype_kind(result) in (
        "b",
        "i",
        "u",
        "f",
    ):
        _FAST_TYPES.add(kind)  # a numpy bool/int/float scalar: later results of this type take the fast path
    return value, None, "ok"


def _dtype_kind(value: Any) -> str | None:
    """numpy's one-letter dtype kind of a numpy scalar or array (b, i, u, f, c, m, ...), else None."""
    return getattr(getattr(value, "dtype", None), "kind", None)


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _type_name(value: Any) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", "builtins")
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _short_repr(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a user object's __repr__ may raise anything
        text = f"<{_type_name(value)} with a failing repr>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exception_summary(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _innermost_line(tb: types.TracebackType | None, filename: str) -> int | None:
    lineno = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno


def _location_lines(reward_file: RewardFile, lineno: int | None, note: str | None = None) -> str:
    if lineno is None:
        text = f'  File "{reward_file.filename}" (line unknown)\n'
    else:
        text = f'  File "{reward_file.filename}", line {lineno}\n'
        line = reward_file.line_text(lineno)
        if line is not None:
            text += f"    {lineno} | {line.rstrip()[:_MAX_PARAM_LINE]}\n"
    for line in (note or "").splitlines():
        text += f"  {line}\n"
    return text


def _syntax_error_message(filename: str, exc: SyntaxError) -> str:
    lineno = exc.lineno
    where = f"line {lineno}" if lineno else "an unknown line"
    text = f"reward file {filename} has a syntax error at {where}: {exc.msg}\n"
    if exc.text:
        line = exc.text.rstrip("\n")
        stripped = line.lstrip()
        text += f"    {lineno} | {stripped}\n"
        if exc.offset:
            caret = max(exc.offset - 1 - (len(line) - len(stripped)), 0)
            text += f"    {' ' * len(str(lineno))} | {' ' * caret}^\n"
    return text.rstrip("\n")


def _key_error_hint(exc: Exception, params: Any) -> str | None:
    if not isinstance(exc, KeyError) or not isinstance(params, dict) or len(exc.args) != 1:
        return None
    key = exc.args[0]
    if key in params:
        return None
    close = difflib.get_close_matches(str(key), [str(k) for k in params], n=1)
    suggestion = f"; did you mean {close[0]!r}?" if close else ""
    return f"params has no key {key!r}{suggestion}"


def _error(message: str, path: Path, lineno: int | None) -> RewardFunctionError:
    """A RewardFunctionError that also carries ``.path`` (the reward file) and ``.lineno`` (or None)."""
    error = RewardFunctionError(message)
    error.path = path  # type: ignore[attr-defined]
    error.lineno = lineno  # type: ignore[attr-defined]
    return error


def _params_block(params: Any) -> str:
    if not isinstance(params, dict):
        return f"params of the failing call: {_short_repr(params, _MAX_PARAM_LINE)}"
    return f"params of the failing call ({len(params)} keys):\n" + format_params(params)


def format_params(params: dict[str, Any]) -> str:
    """A compact, deterministic rendering of a params dict for error messages: one indented line per key.

    Keys sorted; floats with 4 decimals; long lists summarised (``<list of 119 (x, y) points>``); at most
    40 keys and 160 characters per line.
    """
    if not isinstance(params, dict):
        return f"  {_short_repr(params, _MAX_PARAM_LINE)}"
    lines = []
    keys = sorted(params, key=str)
    for key in keys[:_MAX_PARAM_KEYS]:
        line = f"  {key}: {_render(params[key])}"
        if len(line) > _MAX_PARAM_LINE:
            line = line[: _MAX_PARAM_LINE - 3] + "..."
        lines.append(line)
    if len(keys) > _MAX_PARAM_KEYS:
        lines.append(f"  ... and {len(keys) - _MAX_PARAM_KEYS} more keys")
    return "\n".join(lines)


def _render(value: Any, depth: int = 0) -> str:
    """A compact, deterministic rendering of one params value."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4f}"
    if isinstance(value, str):
        return _short_repr(value)
    if isinstance(value, list | tuple):
        if len(value) > _MAX_INLINE_ITEMS or depth >= 2:
            return _summarise(value)
        inner = ", ".join(_render(item, depth + 1) for item in value)
        if isinstance(value, tuple):
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    if isinstance(value, dict):
        return f"<dict of {len(value)} keys>"
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        return f"<{_type_name(value)} shape {tuple(shape)} dtype {value.dtype}>"
    return _short_repr(value)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _summarise(seq: list | tuple) -> str:
    kind = type(seq).__name__
    n = len(seq)
    if n and all(isinstance(p, list | tuple) and len(p) == 2 and all(map(_is_real, p)) for p in seq):
        return f"<{kind} of {n} (x, y) points>"
    if n and all(_is_real(v) for v in seq):
        floats = [float(v) for v in seq]
        return f"<{kind} of {n} numbers, min {min(floats):.4f}, max {max(floats):.4f}>"
    return f"<{kind} of {n} items>"
