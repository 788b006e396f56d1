"""`contact-center sms reconcile`, run as a user runs it, against the Kolmeya sandbox whose
status callbacks never arrive."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from contact_center.db import make_engine, make_session_factory
from contact_center.messaging.dispatch import dispatch
from contact_center.messaging.models import Message
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.settings import Settings
from tests.test_cli import run_cli


@pytest.fixture
def sandbox():
    with SandboxServer("sandbox-token", status_delay_seconds=0.01, drop_status_callback_probability=1.0) as server:
        yield server


@pytest.fixture
def workdir(tmp_path, sandbox):
    created = run_cli("channels", "create", "SMS SANDBOX", "--provider", "kolmeya_sandbox", "-c", "token=sandbox-token",
                      "-s", f"base_url={sandbox.base_url}", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    return tmp_path


def send_one(workdir, sandbox, phone: str) -> None:
    """Queue with the command, send in this process (no worker runs here), and wait until
    Kolmeya's record is final: its callback is dropped."""
    assert run_cli("sms", "send", phone, "Sua fatura venceu", "--no-wait", data_dir=workdir).returncode == 0
    settings = Settings(_env_file=None, data_dir=workdir, webhook_writer_process=False)
    engine = make_engine(settings.effective_database_url)
    factory = make_session_factory(engine)
    with factory() as session:
        ids = list(session.scalars(select(Message.id).where(Message.status == "queued")))
    dispatch(factory, settings, ids)
    engine.dispose()
    deadline = time.monotonic() + 5
    while any(m["status_code"] < 3 for m in sandbox.ledger()["messages"]) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_reconcile_prints_what_the_report_changed(workdir, sandbox):
    send_one(workdir, sandbox, "(11) 90000-0001")
    result = run_cli("sms", "reconcile", "--channel", "SMS SANDBOX", data_dir=workdir)
    assert result.returncode == 0, result.stderr
    assert "changed by the status report" in result.stdout
    assert re.search(r"sent\s+│\s+delivered\s+│\s+1\b", result.stdout), result.stdout
    assert "1 report row(s): 1 matched (1 changed" in result.stdout


def test_an_unreadable_report_is_one_clear_line_and_changes_nothing(workdir, sandbox):
    send_one(workdir, sandbox, "(11) 90000-0002")
    sandbox.configure(fail_next=["garbage"])
    result = run_cli("sms", "reconcile", data_dir=workdir)
    assert result.returncode == 1
    assert "could not be read; nothing changed" in result.stderr and "Traceback" not in result.stderr
    assert run_cli("sms", "reconcile", "--since", "ontem", data_dir=workdir).returncode == 2
    later = run_cli("sms", "reconcile", "--since", "2020-01-01", data_dir=workdir)
    assert later.returncode == 0 and "1 changed" in later.stdout
