"""An Odoo for the sync to talk to: the sandbox XML-RPC server (contact_center.odoo.sandbox)."""

from __future__ import annotations

import pytest

from contact_center.odoo.config import OdooConfig, parse_field_map
from contact_center.odoo.sandbox import OdooSandbox
from contact_center.settings import Settings


@pytest.fixture
def odoo():
    with OdooSandbox(extra_fields={"x_celular2": "char", "x_valor_parcela": "float"}) as server:
        yield server


@pytest.fixture
def odoo_config(odoo) -> OdooConfig:
    return config_for(odoo)


def config_for(odoo: OdooSandbox, *, fields: str = "", api_key: str | None = None) -> OdooConfig:
    return OdooConfig(odoo.url, odoo.database, odoo.login, odoo.api_key if api_key is None else api_key,
                      parse_field_map(fields), timeout=5)


@pytest.fixture
def settings(tmp_path, odoo) -> Settings:
    """The test settings with the sandbox Odoo configured and chatter notes on."""
    return Settings(data_dir=tmp_path, secret_key="test-secret-key-0123456789", webhook_writer_process=False,
                    odoo_url=odoo.url, odoo_database=odoo.database, odoo_login=odoo.login,
                    odoo_api_key=odoo.api_key, odoo_chatter_notes=True, odoo_timeout_seconds=5, _env_file=None)
