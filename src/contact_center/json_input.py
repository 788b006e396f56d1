"""JSON from outside, read strictly: what could not be stored or computed is refused at the door
with a clear error, instead of failing deep inside (a 500) or half-way through a write.

Refused, each with a message that says what was found and what is expected:
- a body that is not UTF-8 (JSON exchanged between systems is UTF-8; a UTF-16 body is full of NULs);
- nesting deeper than the decoder goes;
- whole numbers outside 64 bits (no id, count or phone of ours is larger, and the databases'
  integers are 64-bit), and numbers with so many digits that converting them is itself the work;
- NaN and Infinity, which are not JSON;
- text holding a NUL character (PostgreSQL cannot store it) or half of a surrogate pair (not a
  Unicode character; nothing can encode it to store it).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DIGITS = 40  # of a number as written: past 64 bits anyway, and cheap to convert
INT64 = 2**63


class BadJson(json.JSONDecodeError):
    """A body we refuse; `message` says why (a JSONDecodeError, so frameworks report it as such)."""

    def __init__(self, message: str):
        super().__init__(message, "", 0)
        self.message = message

    def __str__(self) -> str:
        return self.message


def loads(raw: bytes | str) -> Any:
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")  # a byte-order mark is tolerated, as the decoder always did
        except UnicodeDecodeError as exc:
            raise BadJson(f"the body is not valid JSON text: it is not UTF-8 (byte 0x{raw[exc.start]:02x} at "
                          f"position {exc.start}); send JSON encoded as UTF-8") from None
    else:
        text = raw
    try:
        value = json.loads(text, parse_int=_whole, parse_float=_real, parse_constant=_constant)
    except RecursionError:
        raise BadJson("the body is nested too deeply to be read") from None
    if "\\u" in text:  # only an escape can bring a NUL or a lone surrogate
        _check_text(value)
    return value


def _whole(written: str) -> int:
    digits = len(written.lstrip("-"))
    if digits > MAX_DIGITS:
        raise BadJson(f"the body has a number with {digits:,} digits; whole numbers are limited to 64 bits "
                      f"(±{INT64 - 1:,})")
    number = int(written)
    if not -INT64 <= number < INT64:
        raise BadJson(f"the body has the number {written}, out of range; whole numbers are limited to 64 bits "
                      f"(±{INT64 - 1:,})")
    return number


def _real(written: str) -> float:
    if len(written) > 400:
        raise BadJson(f"the body has a number written with {len(written):,} characters; write it shorter")
    number = float(written)
    if not math.isfinite(number):
        raise BadJson(f"the body has the number {written[:40]}, too large to represent")
    return number


def _constant(name: str):
    raise BadJson(f"the body has {name}, which is not a number JSON allows")


def _check_text(value: Any) -> None:
    """Walk the decoded body (no recursion: it may be as deep as the decoder allowed)."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            _check_string(item, where)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _check_string(key, where or "body")
                pending.append((inner, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            pending.extend((inner, f"{where}[{index}]") for index, inner in enumerate(item))


def _check_string(text: str, where: str) -> None:
    # The place is named from the body's own keys: shortened, and with only printable characters,
    # as the message may be stored (a rejected callback's reason) and shown.
    place = "".join(ch if ch.isprintable() else "?" for ch in (where or "body")[:80])
    if "\x00" in text:
        raise BadJson(f"{place}: the text holds a NUL character (\\u0000), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadJson(f"{place}: the text holds half of a surrogate pair (\\u{ord(text[exc.start]):04x}), "
                      "which is not a Unicode character") from None
