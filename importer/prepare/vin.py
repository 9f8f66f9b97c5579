"""Vehicle identification numbers: the ISO 3779 alphabet and the North American check digit."""

from __future__ import annotations

import re

#: 17 characters, digits and capital letters except I, O and Q (they read as 1 and 0).
VIN_PATTERN = r"[A-HJ-NPR-Z0-9]{17}"
#: World manufacturer identifiers starting 1-5 are North American: their 9th character is a check digit.
NORTH_AMERICAN_PREFIX = "12345"

#: Letter values of the check-digit transliteration (49 CFR 565.15); digits stand for themselves.
TRANSLITERATION: dict[str, int] = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
#: Position weights; the 9th position (the check digit itself) weighs nothing.
WEIGHTS: tuple[int, ...] = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)

_VIN_RE = re.compile(VIN_PATTERN)


def check_digit(vin: str) -> str:
    """The check digit a 17-character VIN should carry in position 9 ('X' stands for 10)."""
    remainder = sum(TRANSLITERATION[c] * w for c, w in zip(vin, WEIGHTS, strict=True)) % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid_vin(vin: str) -> bool:
    """True for a well-formed VIN whose check digit holds where one is required."""
    if not _VIN_RE.fullmatch(vin):
        return False
    return vin[0] not in NORTH_AMERICAN_PREFIX or vin[8] == check_digit(vin)
