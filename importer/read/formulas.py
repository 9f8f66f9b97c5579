"""The one rule for a cell a spreadsheet would run as a formula, and the quote that defuses it in our CSVs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the vectorized rules call the Series' own methods; errors.xlsx's process imports no pandas
    import pandas as pd

#: What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list): `=`, `+`, `-`, `@`,
#: tab and carriage return at the start. No name, company or address starts so; a phone in E.164 does,
#: which is why phones are defused in our files but never dropped.
FORMULA_CHARS = "=+-@\t\r"
#: A cell that starts with one of FORMULA_CHARS, as a regular expression (pandas and re alike).
FORMULA_START = "^[" + re.escape(FORMULA_CHARS) + "]"
#: The quote put before such a cell in a CSV we write; a cell that already starts with a quote gets one
#: too, so that taking the first quote away always gives the value back.
_DEFUSE = "^([" + re.escape(FORMULA_CHARS + "'") + "])"
_UNDEFUSE = "^'([" + re.escape(FORMULA_CHARS + "'") + "])"
#: The characters a quote was put before (what `_UNDEFUSE` takes the quote away from).
_DEFUSED = FORMULA_CHARS + "'"


def is_formula(values: pd.Series) -> pd.Series:
    """Which values a spreadsheet would run as a formula (booleans, False for missing values)."""
    found: pd.Series = values.str.contains(FORMULA_START, regex=True).fillna(False).astype(bool)
    return found


def is_formula_text(value: str) -> bool:
    return value[:1] in FORMULA_CHARS and value != ""


def defuse(values: pd.Series) -> pd.Series:
    """A quote before each value a spreadsheet would run (and before each value that starts with a quote)."""
    return _where_defusable(values, 0, _DEFUSE, r"'\1", _with_quote)


def _where_defusable(values: pd.Series, at: int, pattern: str, replacement: str,
                     change: Callable[[Any], Any]) -> pd.Series:
    """`values` with `change` made to each that has a defused character at `at` (after a quote, when `at` is 1):
    defuse and undefuse both.

    An Arrow-backed text column (what the reports write and read) is done in Arrow, each value's first
    characters looked up, and a column with nothing to change (most) is kept as it is. Over 100,000 rows of
    errors.csv's columns: defuse 0.09 s against the regular expression's 0.36 s, undefuse 0.09 s against 0.12 s.
    Any other column goes by the regular expression `pattern`, replaced by `replacement`."""
    if getattr(values.dtype, "storage", None) != "pyarrow":
        changed: pd.Series = values.str.replace(pattern, replacement, regex=True)
        return changed
    import pyarrow as pa  # here: errors.xlsx's second process imports this module, and needs no pyarrow
    import pyarrow.compute as pc

    arrow = pa.array(values.array)

    def char(position: int) -> Any:
        return pc.utf8_slice_codeunits(arrow, position, position + 1)

    which = pc.is_in(char(at), value_set=pa.array(list(_DEFUSED), arrow.type))
    if at == 1:
        which = pc.and_(which, pc.equal(char(0), pa.scalar("'", arrow.type)))
    which = pc.fill_null(which, False)
    if not pc.any(which).as_py():
        return values
    dtype: Any = values.dtype  # a pandas StringDtype, which makes a column of Arrow strings
    return type(values)(dtype.__from_arrow__(pc.if_else(which, change(arrow), arrow)), index=values.index,
                        name=values.name)


def _with_quote(arrow: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(pa.scalar("'", arrow.type), arrow, pa.scalar("", arrow.type))


def _without_quote(arrow: Any) -> Any:
    import pyarrow.compute as pc

    return pc.utf8_slice_codeunits(arrow, 1)


def defuse_text(value: str) -> str:
    return "'" + value if value[:1] in FORMULA_CHARS + "'" and value else value


def undefuse(values: pd.Series) -> pd.Series:
    """Values of a CSV we wrote as they were before `defuse`."""
    return _where_defusable(values, 1, _UNDEFUSE, r"\1", _without_quote)


def undefuse_text(value: str) -> str:
    """`undefuse` of one value, without a regular expression: it runs for every quoted cell of errors.xlsx."""
    return value[1:] if value[:1] == "'" and len(value) > 1 and value[1] in _DEFUSED else value
