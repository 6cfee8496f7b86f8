"""pitlane league server: leagues, events and live leaderboards fed by MQTT lap reports (see ARCHITECTURE.md).

Entry points: `league_server.main.create_app(settings)` (FastAPI) and `pitlane league ...` (CLI).
"""
