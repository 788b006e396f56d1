from __future__ import annotations

from decimal import Decimal


def brl_digits(amount: Decimal) -> str:
    """Decimal('1234.5') → '1.234,50': Brazilian thousands and decimal separators, no sign."""
    return f"{abs(amount).quantize(Decimal('0.01')):,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def format_brl(amount: Decimal) -> str:
    """Decimal('1234.5') → 'R$ 1.234,50'; negative as '-R$ 5,00'."""
    return f"{'-' if amount < 0 else ''}R$ {brl_digits(amount)}"
