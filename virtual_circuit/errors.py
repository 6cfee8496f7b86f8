"""The virtual circuit's exceptions: one root, leaves that also subclass the builtin a caller would expect."""

from __future__ import annotations


class VirtualCircuitError(Exception):
    """Root of every error the virtual circuit (`virtual_circuit/`) raises on purpose."""


class SubmissionRejected(VirtualCircuitError, ValueError):  # noqa: N818 - a verdict, named as the API asks
    """An uploaded model that cannot race; `problems` holds every reason, each a sentence naming the file and
    what was expected (`virtual_circuit.check.check_submission`)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems) or "the submission was rejected")
        self.problems = list(problems)


class RuntimeUnusableError(VirtualCircuitError, RuntimeError):
    """This worker's onnxruntime cannot load even a minimal model: the worker, not the upload, is broken."""
