"""The sandbox Odoo answers the external API calls the way Odoo does, through our client."""

from __future__ import annotations

import pytest

from contact_center.odoo.client import OdooFault
from contact_center.odoo.sandbox import sample_partners
from tests.odoo.conftest import config_for


@pytest.fixture
def client(odoo):
    for partner in sample_partners(30):
        odoo.put(partner)
    odoo.put({"id": 31, "name": "Arquivado", "active": False, "write_date": "2026-11-02 09:00:00"})
    client = config_for(odoo).client()
    client.login()
    return client


def ids(records) -> list[int]:
    return [r["id"] for r in records]


def test_search_read_with_domains_order_limit_and_offset(client):
    after = ["|", ("write_date", ">", "2026-11-02 09:00:00"), "&", ("write_date", "=", "2026-11-02 09:00:00"),
             ("id", ">", 25)]
    assert ids(client.search_read(after, ["name"], order="write_date asc, id asc", limit=100)) == [
        26, 27, 28, 29, 10, 20, 30]
    assert ids(client.search_read([("id", "in", [3, 4, 5])], ["name"], order="id desc", limit=2)) == [5, 4]
    assert ids(client.execute("res.partner", "search_read", [[("id", "<=", 10)]],
                              {"fields": ["name"], "order": "id", "offset": 8})) == [9, 10]
    assert ids(client.search_read(["!", ("id", ">", 2)], ["name"], order="id", limit=10)) == [1, 2]
    assert ids(client.search_read([("active", "=", False)], ["name"], order="id", limit=10)) == [31]
    assert client.search_count([]) == 30  # archived partners are left out unless asked for
    [partner] = client.read([6], ["name", "mobile", "phone"])
    assert partner == {"id": 6, "name": "Cliente Teste 6", "mobile": "5511 90000-0006",
                       "phone": "(11) 3000-0006 ramal 21"}
    assert client.fields_get()["write_date"]["type"] == "datetime"


def test_unknown_fields_models_and_methods_are_faults_with_odoos_reason(client):
    with pytest.raises(OdooFault, match="Invalid field 'x_nada' on model 'res.partner'"):
        client.search_read([], ["x_nada"], order="id", limit=1)
    with pytest.raises(OdooFault, match=r"Invalid field 'x_nada' in leaf"):
        client.search_read([("x_nada", "=", 1)], ["name"], order="id", limit=1)
    with pytest.raises(OdooFault, match="KeyError: 'res.parceiro'"):
        client.execute("res.parceiro", "search_read", [[]])
    with pytest.raises(OdooFault, match="has no attribute 'unlink_all'"):
        client.execute("res.partner", "unlink_all", [[]])
