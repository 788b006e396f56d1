"""`contact-center sms report`: a message blocked by an opt-out is counted apart from the sent ones,
and times are Brasília's, as on the reports page."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

from tests.test_cli import run_cli


def test_blocked_messages_are_not_counted_as_sent_and_times_are_brasilias(tmp_path):
    created = run_cli("channels", "create", "SMS SANDBOX", "--provider", "kolmeya_sandbox", "-c", "token=t",
                      "-s", "base_url=http://127.0.0.1:9/api/v1", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    assert run_cli("contacts", "add", "Ana Lima", "--mobile", "11 90000-0001", data_dir=tmp_path).returncode == 0
    assert run_cli("contacts", "update", "1", "--opt-out-sms", data_dir=tmp_path).returncode == 0
    assert run_cli("contacts", "add", "Bruno Dias", "--mobile", "11 90000-0002", data_dir=tmp_path).returncode == 0
    for phone in ("11 90000-0001", "11 90000-0001", "11 90000-0002"):
        sent = run_cli("sms", "send", phone, "Sua fatura vence amanhã", "--no-wait", data_dir=tmp_path)
        assert sent.returncode == 0, sent.stderr
    with sqlite3.connect(tmp_path / "contact-center.db") as db:
        statuses = db.execute("SELECT contact_id, status FROM messages ORDER BY id").fetchall()
        [stored] = db.execute("SELECT created_at FROM messages WHERE status = 'blocked' ORDER BY id DESC "
                              "LIMIT 1").fetchone()
    assert statuses == [(1, "blocked"), (1, "blocked"), (2, "queued")]

    report = run_cli("sms", "report", data_dir=tmp_path)
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert re.search(r"contact\s*┃\s*name\s*┃\s*sent\s*┃\s*blocked\s*┃\s*received\s*┃\s*not delivered", report.stdout)
    [ana] = [line for line in lines if "Ana Lima" in line]
    [bruno] = [line for line in lines if "Bruno Dias" in line]
    assert re.findall(r"\d+", ana) == ["1", "0", "2", "0", "0"]  # id, sent, blocked, received, not delivered
    assert re.findall(r"\d+", bruno) == ["2", "1", "0", "0", "0"]
    brasilia = (datetime.fromisoformat(stored).replace(tzinfo=UTC) - timedelta(hours=3)).strftime("%d/%m/%Y %H:%M")
    assert "created (Brasília)" in report.stdout and brasilia in report.stdout
