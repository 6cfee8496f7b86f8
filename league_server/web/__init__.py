"""The league's web pages: server-rendered Jinja2 HTML, a little vanilla JavaScript, server-sent events.

`web_router()` is included by `league_server.main.create_app`. Pages: ``/`` (races), ``/races/{id}`` (live
leaderboard), ``/races/{id}/bigscreen``, ``/races/{id}/laps``; SSE stream ``/races/{id}/events``; static files
under ``/static/web/``. Every number the pages show comes from `league_server.ranking` (via the JSON API for the
live updates): the pages never rank anything themselves.
"""

from league_server.web.routes import web_router

__all__ = ["web_router"]
