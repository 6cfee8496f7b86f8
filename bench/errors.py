"""The benchmarks' exceptions: one root (`BenchError`); every leaf also subclasses a builtin so callers
that only know the builtin (RuntimeError) still catch it."""

from __future__ import annotations


class BenchError(Exception):
    """Root of every bench error."""


class IngestBenchError(BenchError, RuntimeError):
    """The ingest benchmark could not run (a service missing, the server not starting); the message says which."""


class LoadError(BenchError, RuntimeError):
    """A response the load generator cannot use (not 200, no Content-Length, connection lost)."""


class StartupBenchError(BenchError, RuntimeError):
    """A probed command failed (names the command and shows its error output)."""


class RobustBenchError(BenchError, RuntimeError):
    """The robustness benchmark could not measure a model (names the file)."""
