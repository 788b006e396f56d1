"""The templates, contacts and sms commands, run as a user runs them, against the Kolmeya sandbox."""

from __future__ import annotations

import pytest

from contact_center.providers.kolmeya.sandbox import SandboxServer
from tests.test_cli import run_cli


@pytest.fixture
def sandbox():
    with SandboxServer("sandbox-token", status_delay_seconds=3600) as server:
        yield server


@pytest.fixture
def workdir(tmp_path, sandbox):
    created = run_cli("channels", "create", "SMS SANDBOX", "--provider", "kolmeya_sandbox", "-c", "token=sandbox-token",
                      "-s", f"base_url={sandbox.base_url}", "-s", "price_per_segment=0.07", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "sandbox-token" not in created.stdout
    assert "/kolmeya/webhook/reply?token=" in created.stdout
    return tmp_path


def test_balance_is_read_from_kolmeyas_brazilian_string(workdir):
    result = run_cli("sms", "balance", data_dir=workdir)
    assert result.returncode == 0, result.stderr
    assert "R$ 9.396,84" in result.stdout and "SANDBOX" in result.stdout


def test_balance_of_an_unreachable_provider_is_a_clear_error(workdir):
    run_cli("channels", "update", "SMS SANDBOX", "-s", "base_url=http://127.0.0.1:9/api/v1", "-s", "timeout_seconds=1",
            data_dir=workdir)
    result = run_cli("sms", "balance", data_dir=workdir)
    assert result.returncode == 1
    assert "cannot reach the provider" in result.stderr and "Traceback" not in result.stderr


def test_templates_commands(workdir):
    created = run_cli("templates", "create", "Cobrança", "--body", "Olá {{ contact.first_name }}, tudo bem?",
                      data_dir=workdir)
    assert created.returncode == 0, created.stderr
    typo = run_cli("templates", "create", "Errado", "--body", "Olá {{ contact.nome }}", data_dir=workdir)
    assert typo.returncode == 1 and "unknown variable 'contact.nome'" in typo.stderr
    run_cli("contacts", "add", "João Silva", "--mobile", "11 90000-0001", data_dir=workdir)
    preview = run_cli("templates", "preview", "Cobrança", "--contact-id", "1", data_dir=workdir)
    assert "Olá João, tudo bem?" in preview.stdout and "UCS-2" in preview.stdout
    assert "Cobrança" in run_cli("templates", "list", data_dir=workdir).stdout
    assert run_cli("templates", "delete", "Cobrança", data_dir=workdir).returncode == 0
    assert "Cobrança" not in run_cli("templates", "list", data_dir=workdir).stdout


def test_contacts_update_and_delete(workdir):
    run_cli("contacts", "add", "Ana", "--mobile", "11 90000-0001", data_dir=workdir)
    bad = run_cli("contacts", "update", "1", "--name", "Ana Lima", "--mobile", "nope", data_dir=workdir)
    assert bad.returncode == 1 and "'nope'" in bad.stderr
    assert "Ana Lima" not in run_cli("contacts", "list", data_dir=workdir).stdout
    good = run_cli("contacts", "update", "1", "--name", "Ana Lima", "--opt-out-sms", data_dir=workdir)
    assert good.returncode == 0 and "Ana Lima" in good.stdout and "sms" in good.stdout
    assert run_cli("contacts", "delete", "1", "--yes", data_dir=workdir).returncode == 0
    assert run_cli("contacts", "find", "11900000001", data_dir=workdir).returncode == 1


def test_send_bulk_report_and_relink(workdir, sandbox):
    sent = run_cli("sms", "send", "(11) 90000-0001", "Sua fatura venceu", "--no-wait", data_dir=workdir)
    assert sent.returncode == 0, sent.stderr
    assert "queued" in sent.stdout

    csv_file = workdir / "lista.csv"
    csv_file.write_text("telefone;nome\n11 90000-0002;Bruno\nnão é telefone;Carla\n11 90000-0003;Diego\n")
    bulk = run_cli("sms", "bulk", "--csv", str(csv_file), "--body", "Oi {{ contact.first_name }}", "--yes",
                   "--no-wait", data_dir=workdir)
    assert bulk.returncode == 0, bulk.stderr
    assert "Oi Bruno" in bulk.stdout and "line 3" in bulk.stdout and "R$ 0,14" in bulk.stdout

    # No worker runs in this test: the messages wait, queued, for `serve` or `worker`.
    report = run_cli("sms", "report", data_dir=workdir)
    assert report.returncode == 0 and "Messages per contact" in report.stdout
    assert run_cli("sms", "relink", data_dir=workdir).stdout.startswith("Linked 0")


def test_a_bulk_send_from_a_template_records_the_template(workdir):
    import sqlite3

    run_cli("templates", "create", "Aviso", "--body", "Oi {{ contact.first_name }}", data_dir=workdir)
    run_cli("contacts", "add", "Ana Lima", "--mobile", "11 90000-0001", data_dir=workdir)
    bulk = run_cli("sms", "bulk", "--search", "", "--template", "Aviso", "--yes", "--no-wait", data_dir=workdir)
    assert bulk.returncode == 0, bulk.stderr
    with sqlite3.connect(workdir / "contact-center.db") as db:
        assert db.execute("SELECT c.template_id, t.name FROM campaigns c JOIN templates t ON t.id = c.template_id"
                          ).fetchall() == [(1, "Aviso")]


def test_templates_have_a_budget_on_the_command_line(workdir):
    long_file = workdir / "longo.txt"
    long_file.write_text("x" * 5001)
    too_long = run_cli("templates", "create", "Longo", "--file", str(long_file), data_dir=workdir)
    assert too_long.returncode == 1 and "the limit is 5,000" in too_long.stderr, too_long.stderr
    power = run_cli("templates", "create", "Pesado", "--body", "{{ 9**(9**8) }}", data_dir=workdir)
    assert power.returncode == 1 and "limited to 1,000 digits" in power.stderr, power.stderr

    assert run_cli("templates", "create", "Grande", "--body", "{{ 'x' * 300 }}", data_dir=workdir).returncode == 0
    preview = run_cli("templates", "preview", "Grande", data_dir=workdir,
                      env={"CONTACT_CENTER_TEMPLATE_MAX_OUTPUT_BYTES": "200"})
    assert preview.returncode == 1 and "size limit of 200 bytes" in preview.stderr, preview.stderr

    run_cli("contacts", "add", "Ana", "--mobile", "11 90000-0001", data_dir=workdir)
    bulk = run_cli("sms", "bulk", "--search", "", "--body", "{{ 'x' * 50000000 }}", "--yes", "--no-wait",
                   data_dir=workdir)
    assert bulk.returncode == 1 and "size limit of 65,536 bytes" in bulk.stderr, bulk.stderr
