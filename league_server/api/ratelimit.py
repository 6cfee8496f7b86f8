"""Per-client-IP rate limit for the public routes, as a FastAPI dependency over the `limits` library.

Why `limits` and not slowapi: slowapi needs a `request` argument and a decorator on every endpoint and its
429 is invisible to the OpenAPI schema; a dependency on the public routers keeps endpoints plain and the 429
documented. `limits` (the engine under slowapi and Flask-Limiter) does the counting: a moving window per IP,
in memory (one process; several workers would use its Redis storage instead).

The HTML pages and their event streams (league_server/web) are limited the same way, per client IP and
`settings.public_rate_limit_per_minute`, but count against a budget of their own (`page_rate_limited`): a
spectator's page views must not use up the JSON budget of the big screen's browser on the same address, or
the other way round. An event stream counts once, when it connects.
"""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import HTTPException, Request, status
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class PublicRateLimit:
    """`per_minute` requests per client IP per minute; 0 disables the limit."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, client_key: str) -> float | None:
        """None if allowed, else seconds until the next request is allowed."""
        if self._item is None or self._limiter.hit(self._item, client_key):
            return None
        reset_at, _remaining = self._limiter.get_window_stats(self._item, client_key)
        return max(0.0, reset_at - time.time())


def _enforce(limit: PublicRateLimit | None, request: Request) -> None:
    """429 with Retry-After when the request's client IP went over `limit` (None: no limit)."""
    if limit is None:
        return
    client = request.client.host if request.client else "unknown"
    wait_s = limit.check(client)
    if wait_s is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"rate limit: {limit.per_minute} requests per minute per client; retry in {wait_s:.0f} s",
            headers={"Retry-After": str(math.ceil(wait_s))},
        )


async def rate_limited(request: Request) -> None:
    """Dependency: 429 with Retry-After when the client went over the public rate limit. async: it only
    touches memory, and a sync dependency would cost every public request a worker-thread round trip."""
    _enforce(getattr(request.app.state, "rate_limit", None), request)


def page_limit_of(state: Any) -> PublicRateLimit | None:
    """The app's limit for HTML pages (``state.page_rate_limit``), made on first use from
    ``state.settings.public_rate_limit_per_minute``; None for an app without settings."""
    limit = getattr(state, "page_rate_limit", None)
    if limit is None:
        settings = getattr(state, "settings", None)
        if settings is None:
            return None
        limit = state.page_rate_limit = PublicRateLimit(settings.public_rate_limit_per_minute)
    return limit


async def page_rate_limited(request: Request) -> None:
    """Dependency of the HTML pages and event streams: as `rate_limited`, against the pages' own budget."""
    _enforce(page_limit_of(request.app.state), request)
