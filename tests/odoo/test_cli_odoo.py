"""`contact-center odoo sync` and `odoo status`, run as a user runs them, against the sandbox Odoo."""

from __future__ import annotations

import re

from contact_center.odoo.sandbox import OdooSandbox, sample_partners
from tests.test_cli import run_cli


def has_row(output: str, label: str, value: str) -> bool:
    """Whether a Rich table in the output has a row `label │ value`."""
    return re.search(rf"{re.escape(label)}\s*│\s*{re.escape(value)}\s", output) is not None


def odoo_env(odoo: OdooSandbox, **overrides) -> dict[str, str]:
    return {"CONTACT_CENTER_ODOO_URL": odoo.url, "CONTACT_CENTER_ODOO_DATABASE": odoo.database,
            "CONTACT_CENTER_ODOO_LOGIN": odoo.login, "CONTACT_CENTER_ODOO_API_KEY": odoo.api_key, **overrides}


def test_sync_and_status_from_the_command_line(tmp_path, odoo):
    for partner in sample_partners(1200):
        odoo.put(partner)
    odoo.put({"id": 5000, "name": "CPF Errado", "vat": "111.222.333-44", "mobile": "(11) 90000-5000",
              "write_date": "2026-11-02 09:00:00"})
    env = odoo_env(odoo)

    never = run_cli("odoo", "status", data_dir=tmp_path, env=env)
    assert never.returncode == 0, never.stderr
    assert "nenhuma ainda" in never.stdout and odoo.api_key not in never.stdout

    synced = run_cli("odoo", "sync", "--rejections", str(tmp_path / "rejeitados.csv"), data_dir=tmp_path, env=env)
    assert synced.returncode == 0, synced.stderr
    assert has_row(synced.stdout, "contatos criados", "1,200")
    assert has_row(synced.stdout, "rejeitados", "1")
    assert "5000" in synced.stdout and "CPF inválido" in synced.stdout
    assert "partner_id,field,reason" in (tmp_path / "rejeitados.csv").read_text(encoding="utf-8-sig")

    again = run_cli("odoo", "sync", data_dir=tmp_path, env=env)
    assert again.returncode == 0 and has_row(again.stdout, "lidos", "0")

    status = run_cli("odoo", "status", data_dir=tmp_path, env=env)
    assert has_row(status.stdout, "contatos ligados a parceiros", "1,200")
    assert "concluída" in status.stdout and "2026-11-02 09:00:01 (parceiro 1200)" in status.stdout

    full = run_cli("odoo", "sync", "--full", data_dir=tmp_path, env=env)
    assert full.returncode == 0 and "sem mudança" in full.stdout and has_row(full.stdout, "lidos", "1,201")


def test_each_failure_is_one_clear_line_and_a_non_zero_exit(tmp_path, odoo):
    odoo.put({"id": 1, "name": "Maria", "mobile": "(11) 90000-0001", "write_date": "2026-11-02 09:00:00"})

    missing = run_cli("odoo", "sync", data_dir=tmp_path, env={"CONTACT_CENTER_ODOO_URL": odoo.url})
    assert missing.returncode == 1
    assert ("a integração com o Odoo não está configurada: defina CONTACT_CENTER_ODOO_DATABASE, "
            "CONTACT_CENTER_ODOO_LOGIN, CONTACT_CENTER_ODOO_API_KEY") in missing.stderr

    refused = run_cli("odoo", "sync", data_dir=tmp_path, env=odoo_env(odoo, CONTACT_CENTER_ODOO_API_KEY="nao-e-esta"))
    assert refused.returncode == 1
    assert "Odoo recusou o login: confira usuário e chave de API" in refused.stderr
    assert "nao-e-esta" not in refused.stderr + refused.stdout and "Traceback" not in refused.stderr

    unknown = run_cli("odoo", "sync", data_dir=tmp_path, env=odoo_env(odoo, CONTACT_CENTER_ODOO_FIELDS="x_cel=mobile"))
    assert unknown.returncode == 1 and "o campo 'x_cel' (para 'mobile') não existe em res.partner" in unknown.stderr

    status = run_cli("odoo", "status", data_dir=tmp_path, env=odoo_env(odoo))
    assert "falhou: o campo 'x_cel'" in status.stdout

    odoo.stop()
    gone = run_cli("odoo", "sync", data_dir=tmp_path, env=odoo_env(odoo))
    assert gone.returncode == 1 and "não respondeu a authenticate" in gone.stderr
    assert "a próxima sincronização continua de onde esta parou" in gone.stderr


def test_an_erased_contact_is_reported_as_skipped_not_synced_again(tmp_path, odoo):
    for partner in sample_partners(5):
        odoo.put(partner)
    env = odoo_env(odoo)
    assert run_cli("odoo", "sync", data_dir=tmp_path, env=env).returncode == 0
    erased = run_cli("contacts", "erase", "1", "--reason", "Pedido da titular, protocolo 2026-0001",
                     "--requested-by", "A titular", "--yes", data_dir=tmp_path, env=env)
    assert erased.returncode == 0, erased.stderr

    full = run_cli("odoo", "sync", "--full", data_dir=tmp_path, env=env)
    assert full.returncode == 0, full.stderr
    assert has_row(full.stdout, "lidos", "5") and has_row(full.stdout, "ignorados: contato apagado (LGPD)", "1")
    assert has_row(full.stdout, "contatos criados", "0")
    status = run_cli("odoo", "status", data_dir=tmp_path, env=env)
    assert "1 ignorados por terem sido apagados (LGPD)" in status.stdout
