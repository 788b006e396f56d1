"""How many SMS a text costs, counted the way carriers count it.

A text that fits the GSM 03.38 default alphabet (3GPP TS 23.038) goes as GSM-7:
160 characters in one SMS, 153 per part once it is split (the concatenation
header takes the rest). Anything else goes as UCS-2 (UTF-16 on the wire): 70 in
one SMS, 67 per part.

Portuguese is the trap: only a few accented letters are in the GSM alphabet
(é, Ç, à, ñ, ü...), while ç, ã, õ, á, í, ó, ú, â, ê, ô are not. One of them
anywhere turns the whole message into UCS-2, so "Olá" costs more than "Ola".
We count against the default alphabet only: Brazilian carriers do not use the
national language shift tables.

Splitting rules that make the count differ from a plain division:

* A GSM-7 extension character (€ [ ] { } ^ ~ | \\ and form feed) is sent as ESC
  plus the character, 2 units that are never split across two parts.
* A character outside the Basic Multilingual Plane (most emoji) is a UTF-16
  surrogate pair, 2 units that are never split across two parts either.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SegmentInfo", "count_segments", "GSM7_BASIC", "GSM7_EXTENSION"]

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 default alphabet, in code order 0x00-0x7F. 0x1B is the escape to the
# extension table and is not a character of its own.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ" "ÆæßÉ"  # 0x10-0x1A, then 0x1C-0x1F (0x1B is ESC)
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# Extension table: sent as ESC + character, so each counts 2.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

_LIMITS = {
    GSM7: (160, 153),  # (single message, per part of a multipart message)
    UCS2: (70, 67),
}


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # length in encoding units (GSM-7 septets / UTF-16 code units)
    segments: int  # 0 for empty text
    per_segment: int  # 160/153 GSM-7, 70/67 UCS-2 (the multipart value when segments > 1)
    remaining: int  # characters left in the current segment


def count_segments(text: str) -> SegmentInfo:
    if _GSM7_ALL.issuperset(text):
        encoding = GSM7
        if GSM7_EXTENSION.isdisjoint(text):
            widths = None
            units = len(text)
        else:
            widths = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
            units = sum(widths)
    else:
        encoding = UCS2
        units = len(text.encode("utf-16-le")) // 2
        widths = None if units == len(text) else [2 if ord(ch) > 0xFFFF else 1 for ch in text]

    single, multi = _LIMITS[encoding]
    if units <= single:
        return SegmentInfo(encoding, units, 1 if units else 0, single, single - units)
    if widths is None:
        segments = -(-units // multi)
        used_in_last = units - (segments - 1) * multi
    else:
        segments, used_in_last = _pack(widths, multi)
    return SegmentInfo(encoding, units, segments, multi, multi - used_in_last)


def _pack(widths: list[int], capacity: int) -> tuple[int, int]:
    """Fill parts in order, moving a 2-unit character whole to the next part.

    Returns (number of parts, units used in the last part).
    """
    segments, used = 1, 0
    for width in widths:
        if used + width > capacity:
            segments += 1
            used = 0
        used += width
    return segments, used
