"""Operators, passwords and API tokens."""

from __future__ import annotations

import hashlib
import logging
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from contact_center.audit.service import record as audit
from contact_center.auth import first_run, sessions
from contact_center.auth.models import ApiToken, Role, User
from contact_center.db import utcnow
from contact_center.errors import Conflict, InvalidInput, NotAuthenticated, NotFound

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
TOKEN_PREFIX = "cc_"
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password must have at least {MIN_PASSWORD_LENGTH} characters",
                           MIN_PASSWORD_LENGTH=MIN_PASSWORD_LENGTH, field="password")


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput("unknown role '{value}'; expected one of {roles}", field="role", value=value,
                           roles=", ".join(r.value for r in Role)) from None


def create_user(session: Session, *, username: str, name: str, password: str, role: str = "agent",
                via: str | None = None) -> User:
    username = username.strip().lower()
    if not username:
        raise InvalidInput("username must not be empty", field="username")
    _validate_password(password)
    role_value = parse_role(role).value
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict("username '{username}' is already taken", username=username, field="username")
    user = User(username=username, name=name.strip() or username, role=role_value, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    audit(session, action="user.create", subject_type="user", subject_id=user.id, via=via, username=username,
          role=role_value)
    log.info("user created: %s (%s)", username, role_value)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no user with id {user_id}", user_id=user_id)
    return user


def get_user_by_username(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound("no user named '{username}'", username=username)
    return user


def update_user(
    session: Session, user: User, *, name: str | None = None, role: str | None = None,
    password: str | None = None, active: bool | None = None, actor_id: int | None = None, via: str = "api",
    keep_session_id: int | None = None, data_dir: Path | None = None,
) -> User:
    """Change a user. A new password, another role or deactivation ends the user's UI sessions, all
    but `keep_session_id` (the one a user changes their own password from).
    A new password for the first-run admin deletes its password file in `data_dir` on commit."""
    # Checked before anything changes: bad input changes nothing.
    new_role = parse_role(role).value if role is not None else None
    if password is not None:
        _validate_password(password)
    reasons = []
    if active is False and user.active:
        reasons.append("deactivated")
    if password is not None:
        reasons.append("password_changed")
    if new_role is not None and new_role != user.role:
        reasons.append("role_changed")
    changed: dict = {}
    if name is not None and (name.strip() or user.name) != user.name:
        changed["name"] = name.strip()
    if new_role is not None and new_role != user.role:
        changed["role"] = f"{user.role} → {new_role}"
    if active is not None and active != user.active:
        changed["active"] = active
    if password is not None:
        changed["password"] = "changed"  # never the password itself
    if name is not None:
        user.name = name.strip() or user.name
    if new_role is not None:
        user.role = new_role
    if password is not None:
        user.password_hash = hash_password(password)
        if data_dir is not None and user.username == first_run.USERNAME:
            first_run.forget_password(session, data_dir)
    if active is not None:
        user.active = active
    session.flush()
    if changed:
        audit(session, action="user.update", subject_type="user", subject_id=user.id, actor_id=actor_id, via=via,
              username=user.username, **changed)
    if reasons:
        keep = keep_session_id if reasons[0] == "password_changed" and len(reasons) == 1 else None
        sessions.end_all(session, user, reasons[0], actor_id=actor_id, via=via, keep_id=keep)
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """The user for these credentials; one vague error for every failure so usernames cannot be probed."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    failure = NotAuthenticated("wrong username or password")
    if user is None or not user.active:
        _hasher.hash(password)  # spend the same time as a real check
        raise failure
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise failure from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


def _digest(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough and lets us find them by index.
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for the user; the clear value is returned here and never again."""
    name = name.strip()
    if not name:
        raise InvalidInput("a token needs a name saying what uses it", field="name")
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, prefix=clear[:10], token_hash=_digest(clear))
    session.add(token)
    session.flush()
    audit(session, action="token.create", subject_type="token", subject_id=token.id, name=name, prefix=token.prefix,
          user=user.username)
    log.info("API token %s (%s) created for %s", token.prefix, name, user.username)
    return token, clear


def list_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def revoke_token(session: Session, token_id: int, *, owner: User | None = None) -> ApiToken:
    """Revoke a token; with an owner, only that user's tokens can be named."""
    token = session.get(ApiToken, token_id)
    if token is None or (owner is not None and token.user_id != owner.id):
        raise NotFound("no API token with id {token_id}", token_id=token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        audit(session, action="token.revoke", subject_type="token", subject_id=token.id, name=token.name,
              prefix=token.prefix, user=token.user.username)
        log.info("API token %s revoked", token.prefix)
    return token


def user_for_token(session: Session, clear: str) -> User:
    return token_for(session, clear).user


def token_for(session: Session, clear: str) -> ApiToken:
    """The live token with this clear value, its user active."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(clear.strip())))
    if token is None:
        raise NotAuthenticated("invalid API token")
    if token.revoked_at is not None:
        raise NotAuthenticated("this API token was revoked")
    if not token.user.active:
        raise NotAuthenticated("the user of this API token is deactivated")
    now = utcnow()
    # Record use at most once a minute: a write on every request would serialise the API on SQLite.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
    return token


def ensure_first_admin(session: Session, data_dir: Path) -> tuple[User, Path] | None:
    """On an empty database, create an admin with a random password, written to a file in
    `data_dir` readable only by its owner; returns the user and the file."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    password = secrets.token_urlsafe(12)
    user = create_user(session, username=first_run.USERNAME, name="Administrator", password=password, role="admin")
    # Written before the commit: should it fail, there is no admin without a known password.
    return user, first_run.write_password(data_dir, password)
