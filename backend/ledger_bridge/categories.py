"""Payee category codes: the list the bridge accepts and documents.

The contracts take any non-zero uint32 as a category. The codes are agreed
off chain between the banks and the regulator, and this module is the one
place where the bridge lists them. Codes from 101 are ordinary purposes of
working-capital credit. Codes from 901 are the speculative uses that the
regulator is expected to block.

The bridge rejects any other code in requests, so a mistyped code never
reaches the chain. Adding a code means adding it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PayeeCategory:
    """A documented payee category."""

    code: int
    name: str
    speculative: bool


_CATEGORIES = (
    PayeeCategory(101, "research services", speculative=False),
    PayeeCategory(102, "equipment", speculative=False),
    PayeeCategory(103, "raw materials", speculative=False),
    PayeeCategory(104, "payroll", speculative=False),
    PayeeCategory(105, "tax", speculative=False),
    PayeeCategory(106, "utilities", speculative=False),
    PayeeCategory(107, "logistics", speculative=False),
    PayeeCategory(108, "textiles and other production inputs", speculative=False),
    PayeeCategory(901, "crypto-asset exchange", speculative=True),
    PayeeCategory(902, "securities trading", speculative=True),
    PayeeCategory(903, "real-estate speculation", speculative=True),
    PayeeCategory(904, "onward lending", speculative=True),
)

CATEGORIES: Mapping[int, PayeeCategory] = {category.code: category for category in _CATEGORIES}
CATEGORY_CODES: tuple[int, ...] = tuple(CATEGORIES)


def category_name(code: int) -> str | None:
    """Return the documented name of a category code, or None for an undocumented code."""
    category = CATEGORIES.get(code)
    return None if category is None else category.name


def describe_categories() -> str:
    """Return the code list as Markdown, for OpenAPI descriptions."""
    lines = [
        f"* `{category.code}` {category.name}"
        + (" (speculative, expected to be blocked)" if category.speculative else "")
        for category in _CATEGORIES
    ]
    return "\n".join(lines)


def list_codes() -> str:
    """Return the codes as one line, such as "101, 102, ... 904"."""
    return ", ".join(str(code) for code in CATEGORY_CODES)
