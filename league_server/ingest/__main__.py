"""``python -m league_server.ingest --db URL --broker mqtt://HOST:PORT``: ingest (every league) alone, without
the web app (a separate ingest process next to several uvicorn workers; the crash tests kill -9 it).
Runs until SIGTERM/SIGINT; ``--ready-file`` is written once subscribed."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from league_server.core.config import Settings
from league_server.core.db import make_engine, make_sessionmaker
from league_server.ingest.service import IngestService


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m league_server.ingest", description=__doc__)
    parser.add_argument("--db", required=True, help="SQLAlchemy database URL (already migrated)")
    parser.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
    parser.add_argument("--ready-file", type=Path, help="written once connected and subscribed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(database_url=args.db, broker_url=args.broker)
    engine = make_engine(settings.database_url)
    service = IngestService(settings, make_sessionmaker(engine)).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    if args.ready_file is not None:
        while not service.wait_connected(0.5):
            if done.is_set():
                break
        args.ready_file.write_text("ready\n", encoding="utf-8")
    done.wait()
    service.stop()
    engine.dispose()


if __name__ == "__main__":
    main()
