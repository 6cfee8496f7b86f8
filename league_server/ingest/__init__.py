"""MQTT ingest: lap reports, car status and timer crossings into the database (see service.py, worker.py,
decide.py). Usage: ``IngestService(settings, sessionmaker, events).start()`` ... ``.stop()``."""

from league_server.ingest.service import IngestService, parse_broker_url
from league_server.ingest.stats import IngestStats

__all__ = ["IngestService", "IngestStats", "parse_broker_url"]
