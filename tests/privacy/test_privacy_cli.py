"""`contacts export-data` and `contacts erase`, run as an admin runs them on the server."""

from __future__ import annotations

import json
import zipfile

from tests.test_cli import run_cli


def test_export_then_erase_from_the_command_line(tmp_path):
    assert run_cli("db", "upgrade", data_dir=tmp_path).returncode == 0
    added = run_cli("contacts", "add", "Maria Aparecida Souza", "--mobile", "(11) 90000-0101", "--email",
                    "maria.souza@example.com", "--document", "417.382.956-64", data_dir=tmp_path)
    assert added.returncode == 0, added.stderr

    exported = run_cli("contacts", "export-data", "1", "--out", "maria.zip", data_dir=tmp_path)
    assert exported.returncode == 0, exported.stderr
    with zipfile.ZipFile(tmp_path / "maria.zip") as archive:
        [contact] = json.loads(archive.read("contacts.json"))
    assert contact["name"] == "Maria Aparecida Souza" and contact["document"] == "41738295664"

    refused = run_cli("contacts", "erase", "1", "--reason", " ", "--requested-by", "A titular", "--yes",
                      data_dir=tmp_path)
    assert refused.returncode == 1 and "reason: informe o motivo" in refused.stderr
    not_confirmed = run_cli("contacts", "erase", "1", "--reason", "Pedido por e-mail", "--requested-by", "A titular",
                            data_dir=tmp_path, input="n\n")
    assert not_confirmed.returncode == 1
    assert "Maria Aparecida Souza" in run_cli("contacts", "list", data_dir=tmp_path).stdout

    erased = run_cli("contacts", "erase", "1", "--reason", "Pedido por e-mail, protocolo 42", "--requested-by",
                     "A titular", "--yes", data_dir=tmp_path)
    assert erased.returncode == 0, erased.stderr
    listed = run_cli("contacts", "list", data_dir=tmp_path).stdout
    assert "Contato apagado #1" in listed and "Maria" not in listed and "90000" not in listed
