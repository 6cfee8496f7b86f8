"""Export's exceptions, under the trainer's root."""

from trainer.errors import TrainerError


class ExportError(TrainerError, ValueError):
    """A run that cannot be exported (no model, an observation the car cannot give as one input, a graph
    that fails the ONNX checker); the message names the run or file."""
