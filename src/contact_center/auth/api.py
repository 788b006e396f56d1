from __future__ import annotations

from fastapi import APIRouter, Query, Request, status

from contact_center.auth import service, sessions
from contact_center.auth.models import Role
from contact_center.auth.schemas import (
    SessionOut, SessionsEnded, TokenCreate, TokenCreated, TokenOut, UserCreate, UserOut, UserUpdate,
)
from contact_center.deps import AdminUser, CurrentUser, DbSession
from contact_center.routes import CheckedRoute

router = APIRouter(prefix="/api", tags=["users and tokens"], route_class=CheckedRoute)


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser):
    return user


@router.get("/users", response_model=list[UserOut])
def list_users(session: DbSession, _: AdminUser):
    return service.list_users(session)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: DbSession, _: AdminUser):
    return service.create_user(
        session, username=body.username, name=body.name, password=body.password, role=body.role.value
    )


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: int, body: UserUpdate, request: Request, session: DbSession, admin: AdminUser):
    """A new password, another role or `active: false` also ends the user's UI sessions."""
    user = service.get_user(session, user_id)
    return service.update_user(
        session, user, name=body.name, password=body.password,
        role=body.role.value if body.role else None, active=body.active,
        actor_id=admin.id, via="api", data_dir=request.app.state.settings.data_dir,
    )


@router.get("/users/{user_id}/sessions", response_model=list[SessionOut])
def list_sessions(user_id: int, session: DbSession, _: AdminUser,
                  include_ended: bool = Query(False, description="Also ended and expired ones (the newest 100).")):
    """The user's UI sessions (logins to the operator UI), newest first. API tokens are not sessions."""
    user = service.get_user(session, user_id)
    return sessions.list_for_user(session, user, include_ended=include_ended)


@router.delete("/users/{user_id}/sessions", response_model=SessionsEnded)
def end_sessions(user_id: int, session: DbSession, admin: AdminUser):
    """Log the user out everywhere: every live UI session ends. Their API tokens keep working."""
    user = service.get_user(session, user_id)
    ended = sessions.end_all(session, user, "ended_by_admin", actor_id=admin.id, via="api")
    return SessionsEnded(user_id=user.id, ended=ended)


@router.delete("/users/{user_id}/sessions/{session_id}", response_model=SessionOut)
def end_session(user_id: int, session_id: int, session: DbSession, admin: AdminUser):
    """End one UI session of the user; ending an ended one changes nothing."""
    user = service.get_user(session, user_id)
    record = sessions.get_for_user(session, user, session_id)
    sessions.end(session, record, "ended_by_admin", actor_id=admin.id, via="api")
    return record


@router.get("/tokens", response_model=list[TokenOut])
def list_my_tokens(session: DbSession, user: CurrentUser):
    return service.list_tokens(session, user)


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, session: DbSession, user: CurrentUser):
    token, clear = service.create_token(session, user, body.name)
    return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=clear)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: int, session: DbSession, user: CurrentUser):
    # Admins may revoke anyone's token (a leaked integration key); others only their own.
    owner = None if user.role_enum.includes(Role.admin) else user
    return service.revoke_token(session, token_id, owner=owner)
