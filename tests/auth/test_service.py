from __future__ import annotations

import stat

import pytest

from contact_center.auth import service
from contact_center.errors import InvalidInput, NotAuthenticated


def test_password_is_hashed_with_argon2_and_verifies(db):
    user = service.create_user(db, username="ana", name="Ana", password="correct horse")
    assert user.password_hash.startswith("$argon2")
    assert "correct horse" not in user.password_hash
    assert service.authenticate(db, "ANA ", "correct horse").id == user.id
    assert user.last_login_at is not None


@pytest.mark.parametrize("username,password", [("ana", "wrong password"), ("nobody", "correct horse")])
def test_failed_login_says_the_same_thing_either_way(db, username, password):
    service.create_user(db, username="ana", name="Ana", password="correct horse")
    with pytest.raises(NotAuthenticated, match="wrong username or password"):
        service.authenticate(db, username, password)


def test_short_password_and_unknown_role_are_refused(db):
    with pytest.raises(InvalidInput, match="at least 8"):
        service.create_user(db, username="a", name="A", password="short")
    with pytest.raises(InvalidInput, match="unknown role 'king'"):
        service.create_user(db, username="a", name="A", password="long enough", role="king")


def test_token_is_stored_hashed(db):
    user = service.create_user(db, username="ana", name="Ana", password="correct horse")
    token, clear = service.create_token(db, user, "ERP")
    assert clear not in (token.token_hash, token.prefix)
    assert service.user_for_token(db, clear).id == user.id
    assert service.user_for_token(db, f"  {clear} ").id == user.id


def test_first_admin_is_created_only_on_an_empty_database(db, tmp_path):
    user, path = service.ensure_first_admin(db, tmp_path)
    assert user.role == "admin" and path == tmp_path / "initial-admin-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    assert service.authenticate(db, "admin", password).id == user.id
    assert service.ensure_first_admin(db, tmp_path) is None
    assert path.read_text().strip() == password  # a later start leaves the file alone
