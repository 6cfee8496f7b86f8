"""Per-client-IP rate limit for the public routes, as a FastAPI dependency over the `limits` library.

Why `limits` and not slowapi: slowapi needs a `request` argument and a decorator on every endpoint and its
429 is invisible to the OpenAPI schema; a dependency on the public routers keeps endpoints plain and the 429
documented. `limits` (the engine under slowapi and Flask-Limiter) does the counting: a moving window per IP,
in memory (one process; several workers would use its Redis storage instead).
"""

from __future__ import annotations

import math
import time

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


async def rate_limited(request: Request) -> None:
    """Dependency: 429 with Retry-After when the client went over the public rate limit. async: it only
    touches memory, and a sync dependency would cost every public request a worker-thread round trip."""
    limit: PublicRateLimit | None = getattr(request.app.state, "rate_limit", None)
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
