"""The league's web pages: server-rendered Jinja2 HTML, a little vanilla JavaScript, server-sent events.

`web_router()` is included by `league_server.main.create_app`. Pages: ``/`` (races), ``/races/{id}`` (live
leaderboard), ``/races/{id}/bigscreen`` (leaderboard, race clock, cars on track, last-lap ticker, QR code),
``/races/{id}/laps`` (100 laps a page, newest first); SSE stream ``/races/{id}/events`` (feed.py: new
leaderboards, new and edited laps, cars on track, pushed once per burst to every page of a race); static files
under ``/static/web/``. Pages and streams are rate-limited per client IP (api/ratelimit.py). Every number the
pages show comes from `league_server.ranking` (the leaderboard JSON of the API, DNF rows included): the pages
never rank anything themselves.
"""

from league_server.web.routes import web_router

__all__ = ["web_router"]
