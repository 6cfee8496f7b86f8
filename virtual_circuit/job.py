"""`python -m virtual_circuit.job [--check] JOB.json`: one evaluation job, as the league server's worker runs it
(in a child process with CPU, memory and wall-clock limits; see `league_server.jobs.sandbox`); `--check` only
checks the upload, as the server does before it queues a submission.

Exit 0 when `result.json` was written (finished, or failed with a reason the racer can act on); non-zero
when the job itself broke, with the reason as the last line on stderr.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from contracts.errors import ContractError
from virtual_circuit.errors import VirtualCircuitError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    check_only = args[:1] == ["--check"]
    args = args[1:] if check_only else args
    if len(args) != 1:
        logging.error("usage: python -m virtual_circuit.job [--check] JOB.json")
        return 2
    from virtual_circuit.evaluate import evaluate_submission  # after the usage check: it loads the simulator

    try:
        evaluate_submission(Path(args[0]), check_only=check_only)
    except (ContractError, VirtualCircuitError, OSError) as exc:
        logging.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
