from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from contact_center.auth.models import Role


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    name: str = Field("", max_length=200)
    password: str = Field(min_length=8, max_length=200)
    role: Role = Role.agent


class UserUpdate(BaseModel):
    name: str | None = Field(None, max_length=200)
    password: str | None = Field(None, min_length=8, max_length=200)
    role: Role | None = None
    active: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    name: str
    role: Role
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What uses the token, e.g. 'ERP integration'.")


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself. Shown only now: store it safely.")


class SessionOut(BaseModel):
    """A UI session (a login); never its token."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    created_at: datetime
    last_seen_at: datetime = Field(description="Updated at most once a minute.")
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None = Field(description="logout, ended_by_admin, password_changed, role_changed or "
                                               "deactivated; null while the session is live or expired")
    active: bool
    client_address: str
    user_agent: str


class SessionsEnded(BaseModel):
    user_id: int
    ended: int = Field(description="How many live sessions were ended.")
