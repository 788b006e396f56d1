"""The Odoo connection and field map, from the CONTACT_CENTER_ODOO_* settings."""

from __future__ import annotations

import re

from dataclasses import dataclass, field

from contact_center.errors import InvalidInput
from contact_center.odoo.client import OdooClient
from contact_center.settings import ENV_PREFIX, Settings

# Our contact fields an Odoo field may fill, and where each is read by default.
TARGETS = ("name", "phone", "mobile", "email", "document", "notes")
DEFAULT_SOURCES = {"name": "name", "phone": "phone", "mobile": "mobile", "email": "email", "document": "vat"}
FIELDS_VARIABLE = f"{ENV_PREFIX}ODOO_FIELDS"


class OdooNotConfigured(InvalidInput):
    code = "odoo_not_configured"


@dataclass(frozen=True)
class OdooConfig:
    url: str
    database: str
    login: str
    api_key: str = field(repr=False)
    sources: dict[str, str]  # our field -> the res.partner field it is read from
    timeout: float = 60.0

    def client(self) -> OdooClient:
        return OdooClient(self.url, self.database, self.login, self.api_key, timeout=self.timeout)


def configured(settings: Settings) -> bool:
    return not _missing(settings)


def from_settings(settings: Settings) -> OdooConfig:
    """The configuration, or OdooNotConfigured naming the variables to set or fix."""
    missing = _missing(settings)
    if missing:
        raise OdooNotConfigured("a integração com o Odoo não está configurada: defina {missing}", field="odoo",
                                missing=", ".join(missing))
    from contact_center.logs import register_secret

    register_secret(settings.odoo_api_key.get_secret_value())
    return OdooConfig(settings.odoo_url, settings.odoo_database, settings.odoo_login,
                      settings.odoo_api_key.get_secret_value(), parse_field_map(settings.odoo_fields),
                      settings.odoo_timeout_seconds)


def _missing(settings: Settings) -> list[str]:
    values = {"odoo_url": settings.odoo_url, "odoo_database": settings.odoo_database,
              "odoo_login": settings.odoo_login, "odoo_api_key": settings.odoo_api_key.get_secret_value()}
    return [f"{ENV_PREFIX}{name.upper()}" for name, value in values.items() if not value.strip()]


def parse_field_map(text: str) -> dict[str, str]:
    """'x_celular2=mobile,comment=notes' over the defaults: our field -> the Odoo field it is read from."""
    sources = dict(DEFAULT_SOURCES)
    chosen: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        odoo_field, sep, target = (side.strip() for side in item.partition("="))
        if not sep or not odoo_field or not target:
            raise OdooNotConfigured("{FIELDS_VARIABLE}: '{item}' deveria ser CAMPO_DO_ODOO=CAMPO_DO_CONTATO, por "
                                    "exemplo x_celular2=mobile",
                                    FIELDS_VARIABLE=FIELDS_VARIABLE, item=item, field="odoo_fields")
        check_target(target)
        if target in chosen:
            raise OdooNotConfigured("{variable}: '{first}' e '{second}' vão ambos para '{target}'; escolha um",
                                    field="odoo_fields", variable=FIELDS_VARIABLE, first=chosen[target],
                                    second=odoo_field, target=target)
        chosen[target] = sources[target] = odoo_field
    return sources


def check_target(target: str, custom_keys: frozenset[str] | None = None) -> None:
    """A contact field a mapped Odoo value may go to: a built-in one, or one the business defined
    (checked once the sync knows them, `custom_keys`; before that any key that could be one)."""
    if target in TARGETS:
        return
    if custom_keys is None and re.fullmatch(r"[a-z][a-z0-9_]{0,39}", target):
        return
    if custom_keys is not None and target in custom_keys:
        return
    known = ", ".join((*TARGETS, *sorted(custom_keys or ())))
    raise OdooNotConfigured("{FIELDS_VARIABLE}: o contato não tem o campo '{target}'; os campos são {known}",
                            FIELDS_VARIABLE=FIELDS_VARIABLE, target=target, known=known,
                            field="odoo_fields")
