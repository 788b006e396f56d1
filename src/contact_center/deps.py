"""FastAPI dependencies shared by every area: the request's session and the authenticated user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from contact_center.audit.service import Actor, act_as
from contact_center.auth import service as auth_service
from contact_center.auth.models import Role, User
from contact_center.db import transaction
from contact_center.errors import NotAuthenticated, PermissionDenied


def _request_session(request: Request) -> Iterator[Session]:
    """One session per request; committed when the endpoint returns, before the response is sent."""
    with transaction(request.app.state.session_factory) as session:
        yield session


# scope="function": exit code runs before the response goes out, so a 2xx means committed.
DbSession = Annotated[Session, Depends(_request_session, scope="function")]


def _bearer_user(request: Request, session: DbSession) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise NotAuthenticated("send an API token as 'Authorization: Bearer <token>'")
    token = auth_service.token_for(session, credentials)
    act_as(session, Actor("api", user_id=token.user_id, token_id=token.id,
                          client_address=request.client.host if request.client else None))
    return token.user


CurrentUser = Annotated[User, Depends(_bearer_user)]


def require_role(role: Role) -> Callable[[User], User]:
    def check(user: CurrentUser) -> User:
        if not user.role_enum.includes(role):
            raise PermissionDenied("this needs the {role_value} role; you are {user_role}",
                                   role_value=role.value, user_role=user.role)
        return user

    return check


AgentUser = CurrentUser
SupervisorUser = Annotated[User, Depends(require_role(Role.supervisor))]
AdminUser = Annotated[User, Depends(require_role(Role.admin))]
