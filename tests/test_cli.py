"""The `contact-center` command, run as a user runs it: a real process on a real data directory."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time

import httpx
import pytest


def run_cli(*args: str, data_dir, env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "CONTACT_CENTER_DATA_DIR": str(data_dir), "COLUMNS": "200", **(env or {})}
    environment.pop("CONTACT_CENTER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "contact_center", *args],
        capture_output=True, text=True, env=environment, input=input, timeout=120, cwd=data_dir,
    )


def test_config_show_masks_secrets(tmp_path):
    result = run_cli("config", "show", data_dir=tmp_path, env={"CONTACT_CENTER_SECRET_KEY": "do-not-print-me"})
    assert result.returncode == 0, result.stderr
    assert "CONTACT_CENTER_SECRET_KEY" in result.stdout
    assert "do-not-print-me" not in result.stdout


def test_malformed_setting_is_one_line_not_a_traceback(tmp_path):
    result = run_cli("config", "show", data_dir=tmp_path, env={"CONTACT_CENTER_LOG_LEVEL": "loud"})
    assert result.returncode == 2
    assert "CONTACT_CENTER_LOG_LEVEL" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_users_tokens_and_contacts_commands(tmp_path):
    assert run_cli("db", "upgrade", data_dir=tmp_path).returncode == 0
    created = run_cli("users", "create", "maria", "--role", "supervisor", "--password", "correct horse", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    token = run_cli("tokens", "create", "maria", "--name", "ERP", data_dir=tmp_path)
    assert token.returncode == 0
    assert re.search(r"cc_[\w-]{40,}", token.stdout)

    bad_role = run_cli("users", "create", "joao", "--role", "king", "--password", "correct horse", data_dir=tmp_path)
    assert bad_role.returncode == 1 and "unknown role 'king'" in bad_role.stderr

    added = run_cli("contacts", "add", "Maria Souza", "--mobile", "(48) 99191-0234", data_dir=tmp_path)
    assert added.returncode == 0, added.stderr
    found = run_cli("contacts", "find", "554891910234", data_dir=tmp_path)
    assert found.returncode == 0 and "Maria Souza" in found.stdout
    missing = run_cli("contacts", "find", "11 90000-0009", data_dir=tmp_path)
    assert missing.returncode == 1
    bad = run_cli("contacts", "add", "X", "--mobile", "12ab", data_dir=tmp_path)
    assert bad.returncode == 1 and "12ab" in bad.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    port = _free_port()
    environment = {**os.environ, "CONTACT_CENTER_DATA_DIR": str(tmp_path)}
    environment.pop("CONTACT_CENTER_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "contact_center", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"serve did not come up: {process.stdout.read()}")
    yield base, process
    process.terminate()
    process.wait(timeout=20)


def _log_in(base: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/inbox", response.text
    return client


def test_serve_writes_the_first_admin_password_to_a_file_and_never_prints_it(served, tmp_path):
    base, process = served
    assert (tmp_path / "contact-center.db").exists()  # CONTACT_CENTER_DATA_DIR is honoured
    assert httpx.get(f"{base}/healthz").json()["database"] == "ok"
    assert httpx.get(f"{base}/docs").status_code == 200
    assert httpx.get(f"{base}/api/contacts").status_code == 401

    secret_file = tmp_path / "initial-admin-password"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600  # only the owner reads it
    password = secret_file.read_text().strip()
    assert len(password) >= 16
    browser = _log_in(base, "admin", password)  # the password in the file is the one that works
    assert browser.get("/inbox").status_code == 200

    # An admin logs someone out everywhere from the command line, while the server runs.
    ended = run_cli("users", "end-sessions", "admin", data_dir=tmp_path)
    assert ended.returncode == 0 and "Ended 1 UI session(s) of admin" in ended.stdout, ended.stderr
    assert browser.get("/inbox").status_code == 303
    assert browser.get("/api/conversations").status_code == 401

    # A new password ends the sessions again, and the file with the old one goes away.
    browser = _log_in(base, "admin", password)
    changed = run_cli("users", "set-password", "admin", "--password", "a brand new horse", data_dir=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert not secret_file.exists()
    assert browser.get("/inbox").status_code == 303
    _log_in(base, "admin", "a brand new horse")

    process.terminate()
    output = process.communicate(timeout=20)[0]
    assert str(secret_file) in output  # where it is...
    assert password not in output  # ...never what it is


def test_end_sessions_of_an_unknown_user_says_so(tmp_path):
    assert run_cli("db", "upgrade", data_dir=tmp_path).returncode == 0
    result = run_cli("users", "end-sessions", "nobody", data_dir=tmp_path)
    assert result.returncode == 1 and "no user named 'nobody'" in result.stderr


def test_a_refusal_is_said_in_the_terminals_language(tmp_path):
    """The locale decides, as for any command-line program: Portuguese, English, or (C, POSIX: a
    script's) the sentence as the code writes it."""
    neutral = {"LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}
    portuguese = run_cli("contacts", "tag", "999999", "vip", data_dir=tmp_path, env={**neutral, "LANG": "pt_BR.UTF-8"})
    assert portuguese.returncode == 1
    assert "não existe contato com id 999999" in portuguese.stderr, portuguese.stderr
    english = run_cli("contacts", "tag", "999999", "vip", data_dir=tmp_path,
                      env={**neutral, "LANG": "pt_BR.UTF-8", "LC_ALL": "en_US.UTF-8"})  # LC_ALL comes first
    assert english.returncode == 1 and "no contact with id 999999" in english.stderr, english.stderr
    script = run_cli("contacts", "tag", "999999", "vip", data_dir=tmp_path, env={**neutral, "LANG": "C.UTF-8"})
    assert script.returncode == 1 and "no contact with id 999999" in script.stderr, script.stderr
