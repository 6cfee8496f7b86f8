"""FastAPI dependencies: a database session per request, the admin bearer check, path parameters with bounds
(an id beyond 32 bits must be a 422, not a database overflow)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from league_server.core import sessions
from league_server.core.security import check_bearer
from league_server.crud.virtual import racer_by_token
from league_server.models import Racer

MAX_ID = 2**31 - 1

RaceId = Annotated[int, Path(ge=1, le=MAX_ID, description="race id")]
LeagueId = Annotated[int, Path(ge=1, le=MAX_ID, description="league id")]
LapId = Annotated[int, Path(ge=1, le=MAX_ID, description="lap id")]
CarIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="car id (slug)")]

_bearer = HTTPBearer(auto_error=False, description="the server's admin token (PITLANE_ADMIN_TOKEN)")


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; rolled back on error, closed at the end (routes commit what they change)."""
    with request.app.state.sessionmaker() as session:
        try:
            yield session
        except Exception:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(get_session)]


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """401 without a bearer token, 403 with a wrong one (or when the server has no admin token set).
    Returns the actor name written to the audit log."""
    token = request.app.state.settings.admin_token
    expected = token.get_secret_value() if token is not None else None
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="admin API: send 'Authorization: Bearer <admin token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not check_bearer(f"Bearer {credentials.credentials}", expected):
        detail = "admin API: wrong token" if expected else "admin API disabled: set PITLANE_ADMIN_TOKEN"
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)
    return "admin"


AdminDep = Annotated[str, Depends(require_admin)]


racer_bearer = HTTPBearer(auto_error=False, description="the racer's token (from the roster import)")


def require_racer(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(racer_bearer)],
) -> Racer:
    """The racer of a bearer token (the command line, the race page's form), or of the console's session cookie
    (an unsafe request must then echo the session's CSRF token); 401 otherwise. A token only ever acts as its
    own racer."""
    if credentials is not None:
        racer = racer_by_token(session, credentials.credentials)
        if racer is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="unknown racer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return racer
    signed_in = sessions.current_racer(request, session)
    if signed_in is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="send 'Authorization: Bearer <your racer token>' (from your organiser), or sign in at "
            "/console/sign-in",
            headers={"WWW-Authenticate": "Bearer"},
        )
    sessions.require_csrf(request, signed_in)
    return signed_in.racer


RacerDep = Annotated[Racer, Depends(require_racer)]


def events_of(request: Request) -> Any:
    """The app's EventHub (None before the app's lifespan has started it: a TestClient used without `with`)."""
    return getattr(request.app.state, "events", None)
