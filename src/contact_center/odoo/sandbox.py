"""A local server that speaks the parts of Odoo's external XML-RPC API the sync and the chatter
notes use, for tests, benchmarks and trying the sync without an Odoo.

``/xmlrpc/2/common``: ``authenticate(db, login, key, env)`` → the uid, or False.
``/xmlrpc/2/object``: ``execute_kw(db, uid, key, model, method, args, kwargs)`` on ``res.partner``:

* ``search_read([domain], fields=, order=, limit=, offset=)`` and ``search_count([domain])``: domains
  of (field, operator, value) leaves (``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``in``, ``not in``)
  joined by the prefix operators ``&``, ``|`` and ``!``; ``order`` like ``"write_date asc, id asc"``.
* ``read([ids], fields=)``, ``fields_get(attributes=)``.
* ``message_post([ids], body=, message_type=, subtype_xmlid=)``: kept in ``notes``.

Like Odoo, it answers an unknown model, field, method or a bad login with an XML-RPC fault whose
text ends in the reason; empty values are ``False``. ``go_away_after(n)`` makes it drop every
connection after ``n`` more ``search_read`` calls, as a server that goes away mid-sync
(``go_away()`` at once; ``come_back()`` ends it).
"""

from __future__ import annotations

import bisect
import itertools
import operator
import threading
import xmlrpc.client
from socketserver import ThreadingMixIn
from xmlrpc.server import MultiPathXMLRPCServer, SimpleXMLRPCDispatcher, SimpleXMLRPCRequestHandler

# Fields of res.partner the sandbox has, with fields_get's type; partners may carry custom x_ ones too.
PARTNER_FIELDS = {
    "id": "integer", "name": "char", "display_name": "char", "phone": "char", "mobile": "char",
    "email": "char", "vat": "char", "comment": "html", "is_company": "boolean", "active": "boolean",
    "write_date": "datetime", "create_date": "datetime",
}

_OPERATORS = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}


def _lower_bound(domain: list, name: str):
    """A value every record matching `domain` has `name` at least at, or None when the domain does
    not say (prefix notation; terms side by side are joined by '&')."""

    def bound(position: int):  # (bound or None, position after the term)
        item = domain[position]
        if item in ("&", "|"):
            left, after_left = bound(position + 1)
            right, after_right = bound(after_left)
            if item == "&":
                return (max(b for b in (left, right) if b is not None) if left is not None or right is not None
                        else None), after_right
            return (min(left, right) if left is not None and right is not None else None), after_right
        if item == "!":
            _, after = bound(position + 1)
            return None, after
        field_name, op, value = item
        return (value if field_name == name and op in (">", ">=", "=") else None), position + 1

    bounds, position = [], 0
    while position < len(domain):
        found, position = bound(position)
        if found is not None:
            bounds.append(found)
    return max(bounds) if bounds else None


def _fault(reason: str) -> xmlrpc.client.Fault:
    # Odoo's faults for unexpected errors carry the server's traceback; the client reads its last line.
    return xmlrpc.client.Fault(1, f"Traceback (most recent call last):\n  File \"odoo/service/model.py\"\n{reason}")


# Odoo's own exceptions travel as their message alone, under these codes (odoo/service/wsgi_server.py).
ACCESS_DENIED = xmlrpc.client.Fault(3, "Access Denied")


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/xmlrpc/2/common", "/xmlrpc/2/object")

    def do_POST(self):
        if not self.is_rpc_path_valid():
            self.report_404()
            return
        data = self.rfile.read(int(self.headers["content-length"]))
        response = None if self.server.gone else self.server._marshaled_dispatch(data, None, self.path)
        if self.server.gone:  # a server that went away: the connection closes unanswered
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-type", "text/xml")
        self.send_header("Content-length", str(len(response)))
        self.end_headers()
        self.wfile.write(response)

    def log_message(self, format, *args):  # quiet
        pass


class _Records(list):
    """A search_read answer whose records' XML the sandbox keeps between calls: marshalling thousands
    of records again for every page would make the sandbox, not the sync, what a benchmark measures."""

    def __init__(self, records: list[dict], xml: list[str]):
        super().__init__(records)
        self.xml = xml


class _ObjectDispatcher(SimpleXMLRPCDispatcher):
    def _marshaled_dispatch(self, data, dispatch_method=None, path=None):
        try:
            params, method = xmlrpc.client.loads(data, use_builtin_types=self.use_builtin_types)
            response = self._dispatch(method, params)
        except xmlrpc.client.Fault as fault:
            return xmlrpc.client.dumps(fault, allow_none=True).encode("utf-8", "xmlcharrefreplace")
        except Exception as exc:  # what Odoo answers for a bug of its own
            return xmlrpc.client.dumps(_fault(f"{exc.__class__.__name__}: {exc}"), allow_none=True).encode("utf-8")
        if not isinstance(response, _Records):
            return xmlrpc.client.dumps((response,), methodresponse=1, allow_none=True).encode("utf-8",
                                                                                            "xmlcharrefreplace")
        return ("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n"
                + "".join(response.xml)
                + "</data></array></value>\n</param>\n</params>\n</methodResponse>\n").encode("utf-8",
                                                                                             "xmlcharrefreplace")


class _Server(ThreadingMixIn, MultiPathXMLRPCServer):
    daemon_threads = True
    allow_reuse_address = True
    gone = False


class OdooSandbox:
    """``with OdooSandbox(partners) as odoo:`` serves on ``odoo.url`` until the block ends."""

    def __init__(self, partners: list[dict] | None = None, *, database: str = "odoo", login: str = "sync@example.com",
                 api_key: str = "chave-de-teste-0001", extra_fields: dict[str, str] | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.database, self.login, self.api_key = database, login, api_key
        self.fields = dict(PARTNER_FIELDS) | (extra_fields or {})
        self.partners: dict[int, dict] = {}
        self.notes: list[dict] = []  # what message_post received, in order
        self.calls: list[str] = []  # "model.method" of every execute_kw
        self._lock = threading.Lock()
        self._order_cache: dict[str | None, tuple] = {}
        self._xml_cache: dict[int, dict[tuple, str]] = {}  # partner id -> {fields: its marshalled record}
        self._searches_left: int | None = None
        for partner in partners or []:
            self.put(partner)
        self._server = _Server((host, port), requestHandler=_Handler, allow_none=True, logRequests=False)
        common = SimpleXMLRPCDispatcher(allow_none=True)
        common.register_function(self._authenticate, "authenticate")
        common.register_function(lambda: {"server_version": "15.0", "protocol_version": 1}, "version")
        objects = _ObjectDispatcher(allow_none=True)
        objects.register_function(self._execute_kw, "execute_kw")
        self._server.add_dispatcher("/xmlrpc/2/common", common)
        self._server.add_dispatcher("/xmlrpc/2/object", objects)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def put(self, partner: dict) -> dict:
        """Add or change a partner (by its id); fields not given are False, write_date is required."""
        record = {name: False for name in self.fields} | {"active": True} | partner
        record["display_name"] = record["name"]
        with self._lock:
            self.partners[record["id"]] = record
            self._order_cache.clear()
            self._xml_cache.pop(record["id"], None)
        return record

    def go_away_after(self, searches: int) -> None:
        """Answer `searches` more search_read calls, then drop every connection (until come_back)."""
        self._searches_left = searches

    def go_away(self) -> None:
        """Drop every connection from now on (until come_back)."""
        self._server.gone = True

    def come_back(self) -> None:
        self._searches_left = None
        self._server.gone = False

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (`contact-center sandbox odoo`)."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def start(self) -> OdooSandbox:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="odoo-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OdooSandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the API ---------------------------------------------------------------------------

    def _authenticate(self, database, login, key, _env=None):
        if database != self.database:
            raise _fault(f'psycopg2.OperationalError: FATAL:  database "{database}" does not exist')
        return 2 if (login, key) == (self.login, self.api_key) else False

    def _execute_kw(self, database, uid, key, model, method, args, kwargs=None):
        if database != self.database or uid != 2 or key != self.api_key:
            raise ACCESS_DENIED
        if model != "res.partner":
            raise _fault(f"KeyError: {model!r}")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            raise _fault(f"AttributeError: type object 'res.partner' has no attribute {method!r}")
        with self._lock:
            self.calls.append(f"{model}.{method}")
        return handler(*args, **(kwargs or {}))

    def _m_fields_get(self, allfields=None, attributes=None):
        return {name: {"type": kind, "string": name.replace("_", " ").title()} for name, kind in self.fields.items()}

    def _m_search_count(self, domain):
        return sum(1 for _ in self._matching(domain))

    def _m_search_read(self, domain=None, fields=None, offset=0, limit=None, order=None):
        if self._searches_left is not None:
            if self._searches_left <= 0:
                self._server.gone = True
                return []  # never sent: the handler closes the connection instead
            self._searches_left -= 1
        fields = self._checked(fields)
        domain = list(domain or [])
        test = self._compile(domain)
        wanted = offset + limit if limit else None
        records, first_key, first_values = self._sorted(order)
        # Like a database's index range scan: skip the records the domain's bound on the first
        # order key rules out ("write_date > mark" of an incremental sync), then test each.
        bound = _lower_bound(domain, first_key) if first_values is not None else None
        start = bisect.bisect_left(first_values, bound) if bound is not None else 0
        page = []
        for record in itertools.islice(records, start, None):  # in order, stopping once the page is full
            if test(record):
                page.append(record)
                if wanted is not None and len(page) >= wanted:
                    break
        records = [self._project(r, fields) for r in page[offset:]]
        return _Records(records, [self._xml(r, tuple(fields)) for r in records])

    def _m_read(self, ids, fields=None):
        fields = self._checked(fields)
        return [self._project(self.partners[i], fields) for i in ids if i in self.partners]

    def _m_message_post(self, ids, body="", message_type="notification", subtype_xmlid=None, **_):
        missing = [i for i in (ids if isinstance(ids, list) else [ids]) if i not in self.partners]
        if missing:
            raise xmlrpc.client.Fault(2, "Record does not exist or has been deleted.\n"
                                         f"(Record: res.partner({missing[0]},), User: 2)")
        with self._lock:
            for partner_id in ids:
                self.notes.append({"partner_id": partner_id, "body": body, "message_type": message_type,
                                   "subtype_xmlid": subtype_xmlid})
            return len(self.notes)

    # --- helpers ---------------------------------------------------------------------------

    def _checked(self, fields: list[str] | None) -> list[str]:
        for name in fields or ():
            if name not in self.fields:
                raise _fault(f"ValueError: Invalid field {name!r} on model 'res.partner'")
        return list(fields) if fields else list(self.fields)

    def _xml(self, projected: dict, fields: tuple[str, ...]) -> str:
        cached = self._xml_cache.setdefault(projected["id"], {})
        xml = cached.get(fields)
        if xml is None:
            wrapped = xmlrpc.client.dumps((projected,), allow_none=True)
            xml = cached[fields] = wrapped.removeprefix("<params>\n<param>\n").removesuffix("</param>\n</params>\n")
        return xml

    @staticmethod
    def _project(record: dict, fields: list[str]) -> dict:
        return {"id": record["id"]} | {name: record.get(name, False) for name in fields}

    def _matching(self, domain: list):
        test = self._compile(list(domain))
        with self._lock:
            records = list(self.partners.values())
        return (r for r in records if test(r))

    def _sorted(self, order: str | None) -> tuple[list[dict], str, list | None]:
        """Every partner in this order, the first order key, and its values in that order when it is
        ascending and never empty (else None); kept until a partner is added or changed."""
        with self._lock:
            cached = self._order_cache.get(order)
            if cached is not None:
                return cached
            records = list(self.partners.values())
        keys = []
        for part in (order or "id").split(","):
            words = part.split()
            if not words or words[0] not in self.fields or (len(words) > 1 and words[1].lower() not in ("asc", "desc")):
                raise _fault(f"ValueError: Invalid \"order\" specified ({order!r})")
            keys.append((words[0], len(words) > 1 and words[1].lower() == "desc"))
        for name, descending in reversed(keys):  # stable sorts, last key first
            records.sort(key=lambda r: (r.get(name) is False, r.get(name)), reverse=descending)
        first, descending = keys[0]
        values = [r.get(first) for r in records]
        if descending or any(v is False for v in values):
            values = None
        with self._lock:
            self._order_cache[order] = cached = (records, first, values)
        return cached

    def _compile(self, domain: list):
        """A predicate for an Odoo domain (prefix notation, implicit '&' between terms)."""
        has_active = any(isinstance(t, (list, tuple)) and t and t[0] == "active" for t in domain)
        if not has_active:  # like Odoo, archived partners are left out unless asked for
            domain = ["&", ("active", "=", True), *domain] if domain else [("active", "=", True)]

        def term(position: int):
            item = domain[position]
            if item in ("&", "|"):
                left, after_left = term(position + 1)
                right, after_right = term(after_left)
                if item == "&":
                    return (lambda r: left(r) and right(r)), after_right
                return (lambda r: left(r) or right(r)), after_right
            if item == "!":
                inner, after = term(position + 1)
                return (lambda r: not inner(r)), after
            name, op, value = item
            if name not in self.fields:
                raise _fault(f"ValueError: Invalid field {name!r} in leaf {tuple(item)!r}")
            if op not in _OPERATORS:
                raise _fault(f"ValueError: Invalid leaf {tuple(item)!r}")
            compare = _OPERATORS[op]
            if op in ("in", "not in"):
                value = set(value)
            return (lambda r: compare(r.get(name), value)), position + 1

        predicates = []
        position = 0
        while position < len(domain):
            predicate, position = term(position)
            predicates.append(predicate)
        return lambda r: all(p(r) for p in predicates)


# --- sample partners: fictitious people whose phones are written the ways Odoo users write them ----

def fictitious_cpf(n: int) -> str:
    """A CPF with valid check digits, from a number below 10**9 (not all digits equal)."""
    digits = [int(d) for d in f"{n:09d}"]
    for position in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(position + 1, 1, -1)))
        digits.append((total * 10) % 11 % 10)
    return "".join(map(str, digits))


def phone_forms(n: int) -> dict[str, str | bool]:
    """Partner n's phone and mobile fields, written one of the ways people write them in Odoo;
    the mobile is always +55 11 9XXXX-XXXX with the digits of n (n < 10**8)."""
    tail = f"{n:08d}"
    a, b = tail[:4], tail[4:]
    landline = f"(11) 3{tail[1:4]}-{tail[4:]}"  # a São Paulo fixed line of partner n
    forms = [
        {"mobile": f"(11) 9{a}-{b}", "phone": False},
        {"mobile": f"+55 11 9{a}-{b}", "phone": False},
        {"mobile": f"119{a}{b}", "phone": False},
        {"mobile": f"011 9{a} {b}", "phone": False},
        {"mobile": f"9 {a}-{b}", "phone": landline},  # no area code: the landline's is the partner's
        {"mobile": False, "phone": f"(11) 9{a}-{b} / {landline}"},  # two numbers in one field
        {"mobile": f"5511 9{a}-{b}", "phone": f"{landline} ramal 21"},
        {"mobile": f"+55 (11) 9{a}.{b}", "phone": False},
    ]
    return forms[n % len(forms)]


def sample_partners(count: int, *, start: int = 1, write_date: str = "2026-11-02 09:00:00") -> list[dict]:
    """`count` partners with ids from `start`: name, the phone forms above, e-mail, CPF in vat (formatted
    one way or another), all written at `write_date` unless every tenth a second later."""
    partners = []
    for n in range(start, start + count):
        cpf = fictitious_cpf(100_000_000 + n)
        vat = (f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}", cpf, f"BR{cpf}")[n % 3]
        stamp = write_date if n % 10 else write_date[:-2] + f"{(int(write_date[-2:]) + 1) % 60:02d}"
        partners.append({"id": n, "name": f"Cliente Teste {n}", "email": f"cliente{n}@example.com", "vat": vat,
                         "write_date": stamp, **phone_forms(n)})
    return partners
