"""Classification of memory text at write time.

Text holding an e-mail address, a phone number, a payment card number (Luhn-checked), an
IBAN (mod-97-checked) or a US social security number is *restricted*: the memory gets
the ``restricted`` tag when it is written, so that search filters, the privacy report
and exports can tell it apart. The checks are patterns, not understanding: they miss
numbers written out in words and may flag a long number that merely passes a checksum.
"""

from __future__ import annotations

import re

__all__ = ["RESTRICTED", "classify", "restricted_tags"]

RESTRICTED = "restricted"
"""The tag of restricted memories."""

# Every repeat is bounded (as addresses are: a 64-character local part, 63-character
# labels): unbounded ones made a long run of such characters cost its length squared.
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}"
)
# A number may touch letters of scripts written without spaces (卡号4111…, رقم4111…):
# only digits, Latin letters and "_" around it make it part of a longer code.
_NUMBER = re.compile(r"(?<![\dA-Za-z_+])\+?\(?\d[\d ().-]{6,}\d(?![\dA-Za-z_])")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DECIMAL = re.compile(r"^\d+[.,]\d+$")
_IBAN = re.compile(
    r"(?<![\dA-Za-z_])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\dA-Za-z_])"
)
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban_valid(text: str) -> bool:
    code = text.replace(" ", "")
    moved = code[4:] + code[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def classify(text: str) -> frozenset[str]:
    """The kinds of restricted data in ``text``: ``email``, ``phone``, ``card``,
    ``iban``, ``ssn`` (empty: none found)."""
    found: set[str] = set()
    if "@" in text and _EMAIL.search(text):
        found.add("email")
    if _SSN.search(text):
        found.add("ssn")
    for match in _IBAN.finditer(text):
        if _iban_valid(match.group()):
            found.add("iban")
    for match in _NUMBER.finditer(text):
        raw = match.group()
        if _ISO_DATE.match(raw) or _DECIMAL.match(raw):
            continue
        digits = re.sub(r"\D", "", raw)
        if 13 <= len(digits) <= 19 and _luhn(digits) and "(" not in raw and "+" not in raw:
            found.add("card")
        elif 9 <= len(digits) <= 15 and not _SSN.fullmatch(raw.strip()):
            found.add("phone")
    return frozenset(found)


def restricted_tags(tags: list[str], *texts: str) -> list[str]:
    """``tags`` with ``restricted`` added if any of ``texts`` holds restricted data."""
    if RESTRICTED in tags or not any(classify(t) for t in texts if t):
        return tags
    return [*tags, RESTRICTED]
