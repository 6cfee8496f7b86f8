"""The `pitlane` command: a thin composition root over sim, trainer, device and league_server."""

__version__ = "0.1.0"
