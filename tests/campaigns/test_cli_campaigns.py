"""The campaigns commands, run as a user runs them (no worker: the build waits for one)."""

from __future__ import annotations

import pytest

from contact_center.providers.kolmeya.sandbox import SandboxServer
from tests.test_cli import run_cli


@pytest.fixture
def workdir(tmp_path):
    with SandboxServer("sandbox-token", status_delay_seconds=3600) as sandbox:
        created = run_cli("channels", "create", "SMS SANDBOX", "--provider", "kolmeya_sandbox", "-c",
                          "token=sandbox-token", "-s", f"base_url={sandbox.base_url}", data_dir=tmp_path)
        assert created.returncode == 0, created.stderr
        yield tmp_path


def test_a_campaign_is_created_listed_shown_and_cancelled(workdir):
    csv_file = workdir / "lista.csv"
    csv_file.write_text("telefone;nome\n11 90000-0002;Bruno\n11 90000-0003;Diego\n")
    created = run_cli("campaigns", "create", "Cobrança dezembro", "--csv", str(csv_file), "--body",
                      "Oi {{ contact.first_name }}", "--per-minute", "60", "--starts-at", "2026-12-07T08:00",
                      data_dir=workdir)
    assert created.returncode == 0, created.stderr
    assert "Campaign 1 created" in created.stdout
    listed = run_cli("campaigns", "list", data_dir=workdir)
    assert "Cobrança dezembro" in listed.stdout and "em preparação" in listed.stdout
    shown = run_cli("campaigns", "show", "1", "--no-follow", data_dir=workdir)
    assert shown.returncode == 0 and "em preparação" in shown.stdout
    refused = run_cli("campaigns", "pause", "1", data_dir=workdir)
    assert refused.returncode == 1 and "só uma campanha em envio pode ser pausada" in refused.stderr, refused.stderr
    cancelled = run_cli("campaigns", "cancel", "1", data_dir=workdir)
    assert cancelled.returncode == 0 and "cancelled; 0 message(s) not sent" in cancelled.stdout
    assert "cancelada" in run_cli("campaigns", "list", data_dir=workdir).stdout


def test_an_unknown_variable_or_a_bad_window_is_refused_on_the_command_line(workdir):
    typo = run_cli("campaigns", "create", "X", "--search", "", "--body", "Oi {{ contact.nome }}", data_dir=workdir)
    assert typo.returncode == 1 and "unknown variable 'contact.nome'" in typo.stderr, typo.stderr
    window = run_cli("campaigns", "create", "X", "--search", "", "--body", "Oi", "--window", '{"days": {"dom": {}}}',
                     data_dir=workdir)
    assert window.returncode == 1 and "unknown day 'dom'" in window.stderr, window.stderr
    assert "em preparação" not in run_cli("campaigns", "list", data_dir=workdir).stdout  # nothing was created
