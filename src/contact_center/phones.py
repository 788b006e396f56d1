"""Phone numbers as our customers write them, turned into E.164 and a match key.

Brazilian numbers arrive in every shape: ``(48) 99191-0234``, ``048 99191-0234``,
``0XX48 99191-0234``, ``0 21 48 99191-0234`` (with a long-distance carrier code),
``+55 48 99191-0234``, ``5548991910234`` and the 12-digit form without the ninth
digit that WhatsApp still reports for older accounts (``554891910234``).

Two values come out of a written number:

* ``e164`` - the number as written, in E.164. We never invent digits here: the
  12-digit old-mobile form stays 12 digits.
* ``key`` - what we match contacts on. For a Brazilian mobile it is the 13-digit
  form with the ninth digit, so ``+554891910234`` and ``+5548991910234`` meet.
  Landlines and non-Brazilian numbers keep their E.164 as key.

``normalize`` runs once per row of a contact import (a million rows) and once per
webhook, so the common Brazilian shapes go through a fast path built from string
operations and set look-ups. Anything the fast path does not recognise goes through
``phonenumbers``, which is also what the tests check the fast path against.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult

from contact_center.errors import InvalidValue
from contact_center.translations import Words

__all__ = [
    "PhoneIdentity",
    "PhoneNumberError",
    "identify",
    "is_mobile",
    "kolmeya_form",
    "match_key",
    "normalize",
    "whatsapp_form",
]


class PhoneNumberError(InvalidValue):
    """A written phone number we cannot use. ``str(err)`` quotes the input and says why."""

    def __init__(self, raw: str, reason: Words) -> None:
        super().__init__("{phone} {reason}", phone=repr(raw), reason=reason)
        self.raw = raw


@dataclass(frozen=True, slots=True)
class PhoneIdentity:
    raw: str  # as written
    e164: str  # '+5548991910234'
    key: str  # match key: BR mobiles always with the ninth digit


# --- Brazilian numbering plan -------------------------------------------------

# Area codes (DDD) in use, per Anatel's numbering plan.
BR_AREA_CODES: frozenset[str] = frozenset(
    "11 12 13 14 15 16 17 18 19 "  # SP
    "21 22 24 27 28 "  # RJ, ES
    "31 32 33 34 35 37 38 "  # MG
    "41 42 43 44 45 46 47 48 49 "  # PR, SC
    "51 53 54 55 "  # RS
    "61 62 63 64 65 66 67 68 69 "  # DF, GO, TO, MT, MS, AC, RO
    "71 73 74 75 77 79 "  # BA, SE
    "81 82 83 84 85 86 87 88 89 "  # PE, AL, PB, RN, CE, PI
    "91 92 93 94 95 96 97 98 99".split()  # PA, AM, RR, AP, MA
)

# Long-distance carrier codes accepted in the "0 + carrier + DDD + number" form.
# Same set libphonenumber's BR metadata strips, so both parsing paths agree.
BR_CARRIER_CODES: frozenset[str] = frozenset("12 14 15 21 22 23 25 31 41 43 55 65 99".split())

_LANDLINE_FIRST = frozenset("2345")  # 8-digit subscriber numbers of fixed lines
_OLD_MOBILE_FIRST = frozenset("6789")  # 8-digit mobiles from before the ninth digit
_SERVICE_PREFIXES = ("300", "303", "500", "800", "900")  # 0300/0500/0800/0900 numbers

# Characters people put between digits. Removed before anything else.
_FORMATTING = (
    " \t\n\r\f\v\u00a0\u2007\u202f"  # spaces, including non-breaking ones
    ".-()[]/"
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"  # hyphens and dashes
)
_STRIP_FORMATTING = str.maketrans("", "", _FORMATTING)

# "ramal 12", "ext. 12", "ext: 12" at the end; ";ext=12" in tel: URIs.
_EXTENSION = re.compile(r"(?:\s*[,;]?\s*(?:ext|ramal|ram)\s*[.:]?\s*|;ext=)\d{1,6}\s*$", re.IGNORECASE)

_MAX_DIGITS = 17  # 00 + carrier code + a 13-digit E.164 number; phonenumbers' own ceiling too
_MIN_DIGITS = 8  # DDD + the shortest subscriber number would be 10; fewer than 8 is never a phone
_MIN_DIGITS_INTERNATIONAL = 7  # a few territories have 4-digit numbers (+683 Niue)


# --- public API ----------------------------------------------------------------


def normalize(raw: str, region: str = "BR") -> str:
    """The E.164 form of ``raw`` (``'+5548991910234'``). Raises PhoneNumberError."""
    plus, digits = _prepare(raw)
    if region == "BR" or plus:
        e164 = _fast_br(plus, digits)
        if e164 is not None:
            return e164
    return _slow(raw, plus, digits, region)


def match_key(raw: str, region: str = "BR") -> str:
    """The key contacts are matched on: a BR mobile always in its 13-digit form."""
    return _key_of(normalize(raw, region))


def identify(raw: str, region: str = "BR") -> PhoneIdentity:
    e164 = normalize(raw, region)
    return PhoneIdentity(raw, e164, _key_of(e164))


def kolmeya_form(raw: str) -> str:
    """Digits with the country code and no '+', as Kolmeya's API takes them.

    Brazilian mobiles are sent with the ninth digit: it has been mandatory
    nationwide since 2016 and SMS to the 8-digit form no longer delivers.
    """
    return match_key(raw)[1:]


def whatsapp_form(raw: str) -> str:
    """Digits with the country code, for the WhatsApp API's ``to`` field.

    WhatsApp accepts the 13-digit Brazilian mobile form for accounts it still
    reports as 12-digit ``wa_id``s, so we always send the dialable 13-digit form.
    """
    return match_key(raw)[1:]


def is_mobile(e164: str) -> bool:
    """True for mobile numbers.

    Brazil: a 9-digit subscriber number starting with 9, or an old 8-digit mobile
    starting with 6-9. Elsewhere, what libphonenumber says (numbers a country does
    not distinguish, like the US, count as mobile).
    """
    number = normalize(e164)
    if number.startswith("+55"):
        nsn = number[3:]
        return (len(nsn) == 11 and nsn[2] == "9") or (len(nsn) == 10 and nsn[2] in _OLD_MOBILE_FIRST)
    kind = phonenumbers.number_type(phonenumbers.parse(number))
    return kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


# --- internals -----------------------------------------------------------------


def _key_of(e164: str) -> str:
    # '+55' + DDD + 8-digit subscriber starting 6-9: an old mobile, key gets the 9.
    if len(e164) == 13 and e164[5] in _OLD_MOBILE_FIRST and e164.startswith("+55"):
        return f"{e164[:5]}9{e164[5:]}"
    return e164


def _prepare(raw: str) -> tuple[bool, str]:
    """(has leading '+', ASCII digits). Raises PhoneNumberError for non-numbers."""
    if not isinstance(raw, str):
        raise TypeError(f"phone number must be a str, not {type(raw).__name__}")
    s = raw.translate(_STRIP_FORMATTING)
    if s.isascii():
        if s.isdigit():
            plus, digits = False, s
        elif s[:1] == "+" and s[1:].isdigit():
            plus, digits = True, s[1:]
        else:
            plus, digits = _prepare_unusual(raw)
    else:
        plus, digits = _prepare_unusual(raw)
    n = len(digits)
    if n < (_MIN_DIGITS_INTERNATIONAL if plus else _MIN_DIGITS):
        if n == 1:
            raise PhoneNumberError(raw, Words("is too short to be a phone number (1 digit)"))
        raise PhoneNumberError(raw, Words("is too short to be a phone number ({count} digits)", count=n))
    if n > _MAX_DIGITS:
        raise PhoneNumberError(raw, Words("is too long to be a phone number ({count} digits)", count=n))
    return plus, digits


def _prepare_unusual(raw: str) -> tuple[bool, str]:
    """The careful version of _prepare: notations, extensions, odd characters."""
    text = raw.strip().replace("\uff0b", "+")  # full-width plus, from some mobile keyboards
    if not text:
        if not raw:
            raise PhoneNumberError(raw, Words("is not a phone number: it is empty"))
        raise PhoneNumberError(raw, Words("is not a phone number: it is blank"))
    if text[:4].lower() == "tel:":  # RFC 3966
        text = text[4:]
    # An extension cannot receive SMS or WhatsApp: we keep the line, drop the extension.
    text = _EXTENSION.sub("", text)
    s = text.translate(_STRIP_FORMATTING)
    # "0XX48 ..." / "(0xx48)": XX stands for the carrier code the caller would dial.
    if s[:3].upper() == "0XX":
        s = "0" + s[3:]
    plus = s[:1] == "+"
    if plus:
        s = s[1:]
    digits = []
    for ch in s:
        if ch.isdecimal():
            digits.append(ch if ch.isascii() else str(unicodedata.decimal(ch)))
        elif ch.isalpha():
            raise PhoneNumberError(raw, Words("is not a phone number: it has letters"))
        elif ch == "+":
            raise PhoneNumberError(raw, Words("is not a phone number: '+' can only come first"))
        else:
            raise PhoneNumberError(raw, Words("is not a phone number: it has an unexpected character {character}",
                                              character=repr(ch)))
    if not digits:
        raise PhoneNumberError(raw, Words("is not a phone number: it has no digits"))
    return plus, "".join(digits)


def _fast_br(plus: bool, digits: str) -> str | None:
    """E.164 for the common Brazilian shapes, or None to let phonenumbers decide.

    Returns only numbers that are valid under our Brazilian rules; everything
    else (including every error) goes to the slow path for a proper diagnosis.
    """
    n = len(digits)
    if plus:
        if digits[:2] != "55" or n not in (12, 13):
            return None
        nsn = digits[2:]
    elif digits[0] != "0":
        if n == 10 or n == 11:
            # A 10/11-digit number without '+' is read as Brazilian DDD + number,
            # even when it would also be a valid number elsewhere (e.g. the US
            # '16502530000'): the default region wins. Foreign numbers need + or 00.
            nsn = digits
        elif (n == 12 or n == 13) and digits[:2] == "55":
            nsn = digits[2:]  # country code without '+'
        else:
            return None
    elif digits[1] != "0":
        if n == 11 or n == 12:
            nsn = digits[1:]  # trunk prefix: 0 + DDD + number
        elif (n == 13 or n == 14) and digits[1:3] in BR_CARRIER_CODES:
            nsn = digits[3:]  # 0 + carrier code + DDD + number
        else:
            return None
    elif (n == 14 or n == 15) and digits[2:4] == "55":
        nsn = digits[4:]  # international prefix 00 + 55
    else:
        return None
    if nsn[:2] not in BR_AREA_CODES:
        return None
    first = nsn[2]
    if len(nsn) == 11:
        if first != "9":
            return None
    elif first not in _LANDLINE_FIRST and first not in _OLD_MOBILE_FIRST:
        return None
    return "+55" + nsn


def _slow(raw: str, plus: bool, digits: str, region: str) -> str:
    """Parse with phonenumbers, then apply our rules. Always returns or raises."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {region!r}")
    text = "+" + digits if plus else digits
    if region == "BR" and not plus and digits[:2] == "00":
        if len(digits) < 12:
            # '(00) 99191-0234': too short for 00 + country code + number, so a
            # Brazilian number written with area code 00.
            raise PhoneNumberError(raw, Words("has an invalid Brazilian area code (DDD) '00'"))
        # 00 is the international prefix. Brazil's own form also carries a carrier
        # code (00 21 1 650 ...); phonenumbers only knows that one, so 00351...
        # would be misread. Try the plain form first, then without the carrier.
        number = _parse_international(raw, "+" + digits[2:])
        if number is None and digits[2:4] in BR_CARRIER_CODES:
            number = _parse_international(raw, "+" + digits[4:])
        if number is None:
            raise PhoneNumberError(raw, Words("is not a valid international number"))
    else:
        try:
            number = phonenumbers.parse(text, region)
        except NumberParseException as exc:
            raise PhoneNumberError(raw, _parse_error_reason(exc)) from None
    if number.country_code == 55:
        return "+55" + _check_br(raw, phonenumbers.national_significant_number(number), plus)
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        raise PhoneNumberError(raw, _impossible_reason(reason, number.country_code))
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _parse_international(raw: str, text: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, None)
    except NumberParseException:
        return None
    if number.country_code != 55 and not phonenumbers.is_possible_number(number):
        return None
    return number


def _check_br(raw: str, nsn: str, plus: bool) -> str:
    """Our rules for a Brazilian national number (DDD + subscriber). Returns nsn."""
    n = len(nsn)
    if n < 10:
        raise PhoneNumberError(raw, Words("is missing the area code (DDD): only {count} digits", count=n))
    if n > 11 and plus:
        raise PhoneNumberError(raw, Words("is too long for a Brazilian number"))
    if n > 11:
        raise PhoneNumberError(raw, Words("is too long for a Brazilian number; write international numbers with + or "
                                          "00"))
    ddd, subscriber = nsn[:2], nsn[2:]
    if ddd not in BR_AREA_CODES:
        if nsn.startswith(_SERVICE_PREFIXES):
            raise PhoneNumberError(raw, Words("is a 0300/0500/0800/0900 service number, which cannot receive messages"))
        raise PhoneNumberError(raw, Words("has an invalid Brazilian area code (DDD) '{ddd}'", ddd=ddd))
    if n == 11 and subscriber[0] != "9":
        raise PhoneNumberError(raw, Words("is not a valid Brazilian number: 9-digit numbers after the DDD start with 9"))
    if n == 10 and subscriber[0] in "01":
        raise PhoneNumberError(raw, Words("is not a valid Brazilian number: 8-digit numbers after the DDD start with 2 to 9"))
    return nsn


def _parse_error_reason(exc: NumberParseException) -> Words:
    return {
        NumberParseException.INVALID_COUNTRY_CODE: Words("is not a phone number: unknown country code"),
        NumberParseException.NOT_A_NUMBER: Words("is not a phone number"),
        NumberParseException.TOO_SHORT_AFTER_IDD: Words("is too short to be a phone number"),
        NumberParseException.TOO_SHORT_NSN: Words("is too short to be a phone number"),
        NumberParseException.TOO_LONG: Words("is too long to be a phone number"),
    }.get(exc.error_type) or Words("is not a phone number")


def _impossible_reason(reason: int, country_code: int) -> Words:
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return Words("is not a phone number: unknown country code +{country_code}", country_code=country_code)
    if reason == ValidationResult.TOO_SHORT:
        return Words("is too short for a +{country_code} number", country_code=country_code)
    if reason == ValidationResult.TOO_LONG:
        return Words("is too long for a +{country_code} number", country_code=country_code)
    return Words("has an impossible length for a +{country_code} number", country_code=country_code)
