"""Customer keys a spreadsheet rewrote: given back from an error report's mk_customer_key, or refused as unreadable.

A spreadsheet opening errors.csv reads `0000082` as the number 82 and saves it so; a long number shown in a
narrow column is saved as `8.23457E+11`. Sent as they are, such keys make new customers (the state and the
server's duplicate search know the customer as `0000082`). errors.csv carries every row's key as the export
had it in `mk_customer_key`; when the report comes back, a key cell that holds the same number is read as
that key, and a key the person really changed is kept, with a warning.
"""

from __future__ import annotations

import csv
import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation

import numpy as np
import pandas as pd

from importer.prepare.normalize import SCIENTIFIC
from importer.read.reader import EXPORT_KEY_COLUMN, KEY_QUOTE, ORIGINAL_ROW_COLUMN, InputFile, header_key

KEY_RESTORED = "the key the export had, whose leading zeros or format a spreadsheet lost"
KEY_CHANGED = "not the key the export had; the key typed is used"
_DIGITS = re.compile("[0-9]+")
#: A whole number as a spreadsheet may format it: thousands separators, a decimal part of zeros.
_WHOLE = re.compile(r"([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.0*)?")
_SCIENTIFIC = re.compile(SCIENTIFIC)


def report_columns(source: InputFile) -> pd.DataFrame | None:
    """For an error report imported again, each row's `original_row` (its number in the file it came from)
    and `export_key` (its key as the export had it; "" from a report written before it was kept)."""
    if not source.is_error_report:
        return None
    names = [header_key(c) for c in source.file_header]
    row_at = names.index("mk_source_row")
    # Through several fix loops: the number in the original export, which each error file carries on.
    original_at = names.index(ORIGINAL_ROW_COLUMN) if ORIGINAL_ROW_COLUMN in names else None
    key_at = names.index(EXPORT_KEY_COLUMN) if EXPORT_KEY_COLUMN in names else None
    rows, keys = [], []
    with source.path.open(encoding=source.text_encoding, newline="") as stream:
        records = csv.reader(stream, delimiter=source.delimiter)
        next(records, None)
        for record in records:
            if not record:
                continue  # a blank line is no row (as the reader counts them)
            original = record[original_at] if original_at is not None and len(record) > original_at else ""
            rows.append(original or (record[row_at] if len(record) > row_at else ""))
            keys.append(record[key_at] if key_at is not None and len(record) > key_at else "")
    index = pd.RangeIndex(1, len(rows) + 1, name="source_row")
    # errors.csv puts a quote before every key, so that a spreadsheet keeps it as text; errors.xlsx does not.
    export_key = pd.Series(keys, index=index, dtype="str").str.removeprefix(KEY_QUOTE)
    return pd.DataFrame({"original_row": pd.Series(rows, index=index, dtype="str"), "export_key": export_key})


def same_number(cell: str, exported: str) -> bool:
    """Whether `cell` is the key `exported` as a spreadsheet saves a key made of digits: leading zeros lost
    (`82` for `0000082`), a decimal part or thousands separators added (`82.0`, `1,234`), or in scientific
    notation (`8.23457E+11` for `823456789012`: the digits it shows are the key's, rounded)."""
    if not _DIGITS.fullmatch(exported):
        return False
    text = cell.strip()
    whole = _WHOLE.fullmatch(text)
    if whole:
        return int(whole.group(1).replace(",", "")) == int(exported)
    if not _SCIENTIFIC.fullmatch(text):
        return False
    text = text.replace(",", ".")
    mantissa = text.upper().partition("E")[0].replace(".", "")
    try:
        shown = Decimal(text)
    except InvalidOperation:
        return False
    # Excel rounds half up; the other rule too, so that no spreadsheet's rounding tells a key apart.
    return any(Context(prec=max(len(mantissa), 1), rounding=rounding).plus(Decimal(exported)) == shown
               for rounding in (ROUND_HALF_UP, ROUND_HALF_EVEN))


def give_back_keys(keys: pd.Series, exported: pd.Series, column: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """The customer keys of an error report's rows, with the key the export had wherever the cell holds it as
    a spreadsheet rewrote it; (keys, each row's warning or "", rows whose key the person changed).

    `keys`: the key column's cells (trimmed, placeholders emptied); `exported`: mk_customer_key, "" where the
    report has none. A key changed for another (or emptied) is the person's decision and wins, warned.
    """
    differ = ((exported != "") & (keys != exported)).to_numpy(dtype=bool)
    if not differ.any():
        return keys, pd.Series("", index=keys.index, dtype="str"), pd.Series(False, index=keys.index)
    cells, before = keys[differ], exported[differ]
    # Most rewritten keys lost their leading zeros only: decided on whole columns; the rest value by value.
    digits = cells.str.fullmatch("[0-9]+") & before.str.fullmatch("[0-9]+")
    same = np.array(digits & (cells.str.lstrip("0") == before.str.lstrip("0")), dtype=bool)
    texts, exports = cells.tolist(), before.tolist()
    for i in np.flatnonzero(~np.asarray(digits, dtype=bool)).tolist():
        same[i] = same_number(str(texts[i]), str(exports[i]))
    notes = [f"{column}: {KEY_RESTORED}: {cell!r} read as {export!r}" if kept
             else f"{column}: {KEY_CHANGED}: {cell!r} (the export had {export!r})"
             for cell, export, kept in zip(texts, exports, same.tolist(), strict=True)]
    where = np.flatnonzero(differ)
    restored, changed = np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=bool)
    restored[where[same]] = True
    changed[where[~same]] = True
    warnings = np.full(len(keys), "", dtype=object)
    warnings[where] = notes
    return (keys.mask(restored, exported), pd.Series(warnings, index=keys.index, dtype="str"),
            pd.Series(changed, index=keys.index))


def unreadable_keys(keys: pd.Series) -> pd.Series:
    """True where a key is a number a spreadsheet saved in scientific notation: which customer it was is lost."""
    found = keys.str.fullmatch(SCIENTIFIC).fillna(False)
    return pd.Series(np.asarray(found, dtype=bool), index=keys.index)
