"""Brazilian CPF: 11 digits whose last two are check digits."""

from __future__ import annotations

import re

from contact_center.errors import InvalidValue

_FORMATTING = re.compile(r"[\s.\-/]")


class DocumentError(InvalidValue):
    pass


def normalize_cpf(raw: str) -> str:
    """Digits only, check digits verified: '123.456.789-09' → '12345678909'."""
    digits = _FORMATTING.sub("", raw)
    if not digits.isdigit():
        raise DocumentError("'{raw}' is not a CPF: only digits, dots and a dash are allowed", raw=raw)
    if len(digits) != 11:
        raise DocumentError("'{raw}' is not a CPF: it has {count} digits, a CPF has 11", raw=raw, count=len(digits))
    if digits == digits[0] * 11:
        raise DocumentError("'{raw}' is not a valid CPF: all digits are the same", raw=raw)
    for position in (9, 10):
        total = sum(int(d) * weight for d, weight in zip(digits[:position], range(position + 1, 1, -1)))
        check = (total * 10) % 11 % 10
        if check != int(digits[position]):
            raise DocumentError("'{raw}' is not a valid CPF: check digit {position} does not match", raw=raw,
                                position=position - 8)
    return digits


def format_cpf(digits: str) -> str:
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"
