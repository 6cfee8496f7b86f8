"""Console sign-in: a racer's token (from the organiser's roster import) exchanged once for a browser session.

    signed = sign_in(session, token)            # None for a token no racer holds
    response.set_cookie(**cookie_args(signed.cookie, secure=...))
    signed_in = current_racer(request, session) # SignedIn (racer, csrf_token) or None
    require_csrf(request, signed_in)            # on every unsafe request that came with the cookie

The cookie is a random value; the database keeps only its SHA-256 (as for racer tokens), so a stolen database
signs nobody in. It is HttpOnly (page scripts never read it), SameSite=Lax (another site's form or fetch does
not carry it on a POST) and Secure when the server is served over https. On top of SameSite, every unsafe
request authenticated by the cookie must echo the session's CSRF token (header `X-CSRF-Token`, or form field
`csrf_token` for plain HTML forms): the synchronizer-token pattern, so an older browser without SameSite is
covered too. Requests with `Authorization: Bearer <racer token>` (the CLI) carry no ambient credential and
need no CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import HTTPException, Request, status
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from league_server.core.security import token_digest
from league_server.crud.virtual import racer_by_token
from league_server.models import ConsoleSession, Racer, utc_now

SESSION_COOKIE = "pitlane_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
#: how long a browser stays signed in without signing in again
SESSION_LIFETIME = timedelta(days=14)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class SignedIn:
    """A racer signed in through a browser session: who, and the CSRF token their pages must send back."""

    racer: Racer
    csrf_token: str
    session_id: int


@dataclass(frozen=True)
class NewSession:
    """A session just made: the cookie value (shown to the browser once) and the CSRF token."""

    cookie: str
    csrf_token: str
    racer: Racer


def sign_in(session: Session, token: str) -> NewSession | None:
    """A new session for the racer holding `token`, or None. Expired sessions of that racer are removed."""
    racer = racer_by_token(session, token.strip()) if token and token.strip() else None
    if racer is None:
        return None
    now = utc_now()
    session.execute(
        delete(ConsoleSession).where(ConsoleSession.racer_id == racer.id, ConsoleSession.expires_at < now)
    )
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(ConsoleSession(racer_id=racer.id, token_hash=token_digest(cookie), csrf_token=csrf,
                               created_at=now, expires_at=now + SESSION_LIFETIME))  # fmt: skip
    session.flush()
    return NewSession(cookie, csrf, racer)


def sign_out(session: Session, signed_in: SignedIn) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.id == signed_in.session_id))


def current_racer(request: Request, session: Session) -> SignedIn | None:
    """The racer this request's session cookie signs in, or None (no cookie, unknown or expired)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == token_digest(cookie)))
    if row is None or row.expires_at < utc_now():
        return None
    return SignedIn(row.racer, row.csrf_token, row.id)


def csrf_ok(signed_in: SignedIn, sent: str | None) -> bool:
    """True when `sent` is the session's CSRF token (constant-time)."""
    return bool(sent) and hmac.compare_digest(sent.encode("utf-8"), signed_in.csrf_token.encode("utf-8"))


def require_csrf(request: Request, signed_in: SignedIn, form_value: str | None = None) -> None:
    """403 unless an unsafe request echoes the session's CSRF token (header, or `form_value` from a form)."""
    if request.method in SAFE_METHODS:
        return
    if not csrf_ok(signed_in, request.headers.get(CSRF_HEADER) or form_value):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"missing or wrong CSRF token: reload the page (send the {CSRF_HEADER} header)",
        )


def cookie_args(value: str, *, secure: bool) -> dict[str, Any]:
    """`Response.set_cookie` arguments for the session cookie."""
    return {
        "key": SESSION_COOKIE,
        "value": value,
        "max_age": int(SESSION_LIFETIME.total_seconds()),
        "httponly": True,
        "samesite": "lax",
        "secure": secure,
        "path": "/",
    }
