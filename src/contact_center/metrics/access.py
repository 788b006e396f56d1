"""Who may read /metrics: the figures say how busy the business is and which providers fail, so
they are not public. CONTACT_CENTER_METRICS_TOKEN asks for `Authorization: Bearer <token>`;
CONTACT_CENTER_METRICS_ALLOW lists the addresses (or networks) allowed to ask; with both set, a
scrape needs both. With neither, only this machine is answered."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from contact_center.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOCALHOST: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def parse_networks(text: str) -> tuple[Network, ...]:
    """"10.0.0.0/8, 192.168.1.5" → the networks; ValueError naming the entry that is neither."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} não é um endereço IP nem uma rede CIDR (exemplos: 10.0.0.5, 10.0.0.0/8, "
                             "fd00::/8)") from None
    return tuple(networks)


@dataclass(frozen=True)
class Refusal:
    status: int  # 401: no or wrong token; 403: an address not allowed
    key: str  # the message's key in the catalogs (translations/)
    values: dict

    def answer(self, accept_language: str | None) -> tuple[dict, dict[str, str]]:
        """The JSON body and headers: why and what to do, in the caller's language (Portuguese by
        default), and no figure."""
        from contact_center.web.i18n import translator  # (settings import this module to check the allow-list)

        lang = "en" if (accept_language or "").strip().lower().startswith("en") else "pt-BR"
        code = "not_authenticated" if self.status == 401 else "forbidden"
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        return {"error": {"code": code, "message": translator(lang)(self.key, **self.values)}}, headers


class MetricsAccess:
    """The rule, read once from the settings."""

    def __init__(self, settings: Settings):
        self.token = settings.metrics_token.get_secret_value()
        self.allowed = parse_networks(settings.metrics_allow)
        self.local_only = not self.token and not self.allowed
        if self.local_only:
            self.allowed = LOCALHOST

    def refusal(self, client_host: str | None, authorization: str | None) -> Refusal | None:
        """None when the caller may read the metrics; else why not."""
        if self.allowed and not _in(client_host, self.allowed):
            return Refusal(403, "metrics.local_only" if self.local_only else "metrics.address_refused",
                           {"address": client_host or "?"})
        if self.token:
            scheme, _, given = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                return Refusal(401, "metrics.token_missing", {})
            if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                return Refusal(401, "metrics.token_wrong", {})
        return None


def _in(host: str | None, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:  # ::ffff:10.0.0.5 is 10.0.0.5
        address = address.ipv4_mapped
    return any(address in network for network in networks)
