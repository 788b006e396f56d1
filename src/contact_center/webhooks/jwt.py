"""Optional HS256 JWT check on provider callbacks, for operators who configure one at the provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from contact_center.errors import NotAuthenticated


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_hs256(token: str, secret: str, leeway_seconds: int = 60) -> dict:
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64decode(header_b64))
        payload = json.loads(_b64decode(payload_b64))
        signature = _b64decode(signature_b64)
    except (ValueError, json.JSONDecodeError):
        raise NotAuthenticated("the webhook's JWT is malformed") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise NotAuthenticated("the webhook's JWT is malformed: its header and claims must be JSON objects")
    if header.get("alg") != "HS256":
        raise NotAuthenticated("the webhook's JWT uses '{alg}'; only HS256 is accepted", alg=header.get("alg"))
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise NotAuthenticated("the webhook's JWT signature does not match the channel's JWT secret")
    expires = payload.get("exp")
    if isinstance(expires, (int, float)) and expires + leeway_seconds < time.time():
        raise NotAuthenticated("the webhook's JWT has expired")
    return payload
