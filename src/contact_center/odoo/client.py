"""Odoo's external API over XML-RPC (the standard library's client, with a timeout).

Two endpoints, as in every Odoo from 8 to 18: ``/xmlrpc/2/common`` (``authenticate``) and
``/xmlrpc/2/object`` (``execute_kw(db, uid, key, model, method, args, kwargs)``). Every failure
becomes an OdooError with a sentence in Portuguese that says what to check; the API key never
appears in one (nor in the log: the runtime registers it as a secret).
"""

from __future__ import annotations

import http.client
import logging
import socket
import xmlrpc.client
from xml.parsers.expat import ExpatError
from typing import Any

from contact_center.errors import ProviderUnavailable

log = logging.getLogger(__name__)

PARTNER = "res.partner"


class OdooError(ProviderUnavailable):
    """Odoo could not do what we asked; the message says what to check."""

    code = "odoo_error"


class OdooLoginRefused(OdooError):
    code = "odoo_login_refused"


class OdooUnreachable(OdooError):
    """No answer: the server is down, unreachable, or stopped answering mid-call."""

    code = "odoo_unreachable"


class OdooFault(OdooError):
    """Odoo answered with an error (an XML-RPC fault): the last line of its traceback is the reason."""

    code = "odoo_fault"


class _Timeout:
    """A transport whose connections give up after `timeout` seconds (the standard one never does)."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.timeout = self.timeout
        return connection


class _Transport(_Timeout, xmlrpc.client.Transport):
    pass


class _SafeTransport(_Timeout, xmlrpc.client.SafeTransport):
    pass


def fault_reason(fault: xmlrpc.client.Fault) -> str:
    """Odoo's own errors (access, missing record, a user error) come as their message; anything else as
    a whole traceback, whose last line is what went wrong."""
    lines = [line.strip() for line in str(fault.faultString).strip().splitlines() if line.strip()]
    if not lines:
        return f"código {fault.faultCode}"
    return lines[-1] if lines[0].startswith("Traceback") else " ".join(lines)


class OdooClient:
    """One Odoo database, logged in once (``login``), then called with ``execute``."""

    def __init__(self, url: str, database: str, login: str, api_key: str, *, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.database = database
        self.login_name = login
        self._api_key = api_key
        self.uid: int | None = None
        transport = _SafeTransport if self.url.startswith("https://") else _Transport
        self._common = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common", transport=transport(timeout),
                                                 allow_none=True)
        self._object = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object", transport=transport(timeout),
                                                 allow_none=True)

    def login(self) -> int:
        uid = self._call("authenticate", self._common.authenticate,
                         self.database, self.login_name, self._api_key, {})
        if not uid:
            raise OdooLoginRefused(
                "Odoo recusou o login: confira usuário e chave de API (usuário '{login_name}', banco '{database}' em {url})", login_name=self.login_name, database=self.database, url=self.url, field="odoo_api_key")
        self.uid = int(uid)
        return self.uid

    def execute(self, model: str, method: str, args: list, kwargs: dict | None = None) -> Any:
        if self.uid is None:
            self.login()
        return self._call(f"{model}.{method}", self._object.execute_kw, self.database, self.uid, self._api_key,
                          model, method, args, kwargs or {})

    # The calls the sync and the chatter notes make.

    def fields_get(self, model: str = PARTNER) -> dict[str, dict]:
        return self.execute(model, "fields_get", [], {"attributes": ["string", "type"]})

    def search_count(self, domain: list, model: str = PARTNER) -> int:
        return int(self.execute(model, "search_count", [domain]))

    def search_read(self, domain: list, fields: list[str], *, order: str, limit: int,
                    model: str = PARTNER) -> list[dict]:
        return self.execute(model, "search_read", [domain], {"fields": fields, "order": order, "limit": limit})

    def read(self, ids: list[int], fields: list[str], model: str = PARTNER) -> list[dict]:
        return self.execute(model, "read", [ids], {"fields": fields})

    def post_note(self, partner_id: int, body: str) -> int:
        """A note (internal, no e-mail to followers) in the partner's chatter; the mail.message id."""
        return int(self.execute(PARTNER, "message_post", [[partner_id]],
                                {"body": body, "message_type": "comment", "subtype_xmlid": "mail.mt_note"}))

    def _call(self, what: str, function, *args):
        try:
            return function(*args)
        except xmlrpc.client.Fault as fault:
            reason = fault_reason(fault)
            if reason.endswith("Access Denied"):
                raise OdooLoginRefused(
                    "Odoo recusou o login: confira usuário e chave de API (usuário '{login_name}', banco '{database}' em {url})", login_name=self.login_name, database=self.database, url=self.url, field="odoo_api_key") from None
            raise OdooFault("Odoo recusou {what}: {reason}", what=what, reason=reason) from None
        except xmlrpc.client.ProtocolError as exc:
            raise OdooUnreachable("Odoo em {url} respondeu HTTP {exc_errcode} {exc_errmsg} a {what}: confira "
                                  "CONTACT_CENTER_ODOO_URL",
                                  url=self.url, exc_errcode=exc.errcode, exc_errmsg=exc.errmsg, what=what) from None
        except (OSError, http.client.HTTPException, socket.timeout) as exc:
            raise OdooUnreachable("Odoo em {url} não respondeu a {what} ({error}: {exc})",
                                  url=self.url, what=what, error=exc.__class__.__name__, exc=exc) from None
        except (xmlrpc.client.ResponseError, ExpatError) as exc:
            raise OdooUnreachable("Odoo em {url} deu uma resposta ilegível a {what}: {exc}",
                                  url=self.url, what=what, exc=exc) from None
