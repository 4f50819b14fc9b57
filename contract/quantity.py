"""Kubernetes quantities as bits per second.

``kubernetes.io/ingress-bandwidth: 100M`` is a resource.Quantity: a decimal number
with an SI (``k``, ``M``, ``G``…), binary (``Ki``, ``Mi``…) or exponent (``1e9``)
suffix. The CNI reference ``bandwidth`` plugin reads the same strings, so we parse
exactly that grammar and nothing looser: ASCII digits only (Kubernetes refuses
``１００M``), and a regular expression without nested or adjacent repetition, so a
match or a refusal takes time linear in the string — which is itself capped at
``MAX_QUANTITY_CHARACTERS``, since a pod author chooses it.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from contract.annotations import quoted
from contract.rates import MAX_RATE_BPS as MAX_BPS
from contract.rates import MIN_RATE_BPS

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
MAX_QUANTITY_CHARACTERS = 64
"""Longer than any quantity a person writes ("9999999999.999999999Ei" is 22)."""
# Each repetition is followed by a character it cannot match, so the engine never
# tries more than one way to split the digits: the match is linear in the input.
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE])|[eE](?P<exponent>[+-]?[0-9]{1,3}))?"
)


class QuantityError(ValueError):
    """A bandwidth string that is not a usable positive rate; the message says why."""


def parse_bandwidth(value: str | int) -> int:
    """Parse a Kubernetes quantity into whole bits per second, rounding fractions up.

    >>> parse_bandwidth("1500k")
    1500000
    """
    if isinstance(value, bool):
        raise QuantityError(f"{quoted(value)} is not a quantity")
    if isinstance(value, int):
        amount = Decimal(value)
    else:
        text = str(value).strip()
        if len(text) > MAX_QUANTITY_CHARACTERS:
            raise QuantityError(
                f"{quoted(value)} is not a Kubernetes quantity: longer than "
                f"{MAX_QUANTITY_CHARACTERS} characters"
            )
        match = _QUANTITY.fullmatch(text)
        if match is None:
            raise QuantityError(
                f"{quoted(value)} is not a Kubernetes quantity (examples: 100M, 1G, 1500k, 1Gi)"
            )
        try:
            amount = Decimal(match["number"])
        except InvalidOperation as error:  # pragma: no cover - the regex admits only numbers
            raise QuantityError(f"{quoted(value)} is not a number") from error
        if match["exponent"] is not None:
            amount = amount.scaleb(int(match["exponent"]))
        else:
            amount *= _SUFFIXES[match["suffix"] or ""]
    if amount <= 0:
        raise QuantityError(f"{quoted(value)} must be a positive rate")
    if amount < MIN_RATE_BPS:
        raise QuantityError(f"{quoted(value)} is below 1k (1 kbit/s), the least Kubernetes shapes")
    if amount > MAX_BPS:
        raise QuantityError(f"{quoted(value)} exceeds the 10T (10 Tbit/s) limit")
    return int(amount.to_integral_value(rounding=ROUND_CEILING))


def is_zero_quantity(value: str) -> bool:
    """Whether ``value`` is a Kubernetes quantity of nothing (``0``, ``0M``, ``0.0``): a DRA
    capacity a claim did not ask for is consumed as zero, which no rate may be."""
    match = _QUANTITY.fullmatch(str(value).strip()[:MAX_QUANTITY_CHARACTERS])
    return match is not None and Decimal(match["number"]) == 0


def format_bandwidth(bps: float) -> str:
    """A rate for people: ``9.2G``, ``500M``, ``1.5k``; three significant digits."""
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(bps) >= scale:
            text = f"{bps / scale:.3g}"
            return f"{text}{suffix}"
    return f"{bps:.3g}"
