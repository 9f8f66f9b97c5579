"""Rows of one customer key that name different people: found, and warned on every row involved."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from importer.prepare.mapping import MappingSpec
from importer.prepare.normalize import text_column

#: The name fields, taken together from one row (prepare/customers.py).
NAME_FIELDS = ("firstName", "middleName", "lastName", "company")
#: Between the packed name fields of a row: a character no export's name holds.
_SEP = "\x1f"
#: The warning's words after the column name (error_codes.WARNINGS explains it).
PROBLEM = "two people under one customer key"


def _hashes(values: pd.Series) -> np.ndarray:
    """64-bit hashes of text, by pandas from the column's own (pyarrow) array (as shared_contacts.py hashes)."""
    hashed: np.ndarray = pd.util.hash_pandas_object(values.astype("str"), index=False).to_numpy()
    return hashed


def _in_several(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where a row's group (a hash) holds more than one distinct value (a number or hash per row): found by
    sorting, without a Python object per row."""
    if not len(groups):
        return np.zeros(0, dtype=bool)
    order = np.lexsort((values, groups))
    group, value = groups[order], values[order]
    # The first row of each distinct (group, value): the groups listed once per distinct value they hold.
    new = np.r_[True, (group[1:] != group[:-1]) | (value[1:] != value[:-1])]
    listed = group[new]
    return _among(groups, np.unique(listed[1:][listed[1:] == listed[:-1]]))


def _repeated(groups: np.ndarray) -> np.ndarray:
    """Where a row's group (a hash) holds more than one row: one sorted copy, no index arrays."""
    ordered = np.sort(groups)
    return _among(groups, np.unique(ordered[1:][ordered[1:] == ordered[:-1]]))


def _among(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """values.isin(wanted), for `wanted` sorted: a binary search per value (np.isin would sort both)."""
    if not len(wanted):
        return np.zeros(len(values), dtype=bool)
    found: np.ndarray = wanted[np.minimum(np.searchsorted(wanted, values), len(wanted) - 1)] == values
    return found


def name_column(mapping: MappingSpec) -> str:
    """The source column the warning is put under: the last name's (or the full name's), else the company's."""
    return mapping.source_of("lastName" if ("lastName" in mapping.fields or mapping.full_name) else "company")


def _display(row: dict[str, str]) -> str:
    """A name as a person reads it: the company of a business, else first, middle and last name."""
    if row["isBusiness"] == "1":
        return row["company"]
    return " ".join(row[f] for f in ("firstName", "middleName", "lastName") if row[f])


def _first_names_differ(one: str, other: str) -> bool:
    """Different first names beyond an initial: "J." and "JOHN" are one person's, "JOSE" and "JOHN" are not."""
    one, other = one.rstrip(".").casefold(), other.rstrip(".").casefold()
    if not one or not other or one == other:
        return False
    return not (min(len(one), len(other)) == 1 and one[0] == other[0])


def different_people(one: dict[str, str], other: dict[str, str]) -> bool:
    """Whether two rows' names are two people: a business and a person, two companies, two last names, or
    two first names beyond an initial."""
    if one["isBusiness"] != other["isBusiness"]:
        return True
    if one["isBusiness"] == "1":
        return one["company"].casefold() != other["company"].casefold()
    if one["lastName"].casefold() != other["lastName"].casefold():
        return True
    return _first_names_differ(one["firstName"], other["firstName"])


@dataclass
class NameCollector:
    """The names of the rows that may be sent, chunk by chunk, for the check once every row is known.

    Only rows with a DMS key are kept: a derived key is made from the name itself, so its rows agree. Each
    row's name fields are packed into one text (one Arrow column, a third of the memory of five), and only
    the rows of keys that repeat are ever unpacked.
    """

    parts: list[pd.Series] = field(default_factory=list)
    #: the rows' customer keys, as 64-bit hashes (the keys' text is in the row table)
    keys: list[np.ndarray] = field(default_factory=list)

    def add(self, frame: pd.DataFrame, keys: pd.Series, maybe: np.ndarray) -> None:
        keep = maybe & ~keys.str.startswith("~").to_numpy(dtype=bool)
        if not keep.any():
            return
        business = pd.Series(np.where(frame["isBusiness"].to_numpy(dtype=bool)[keep], "1", ""),
                             index=frame.index[keep], dtype="str")
        fields = [text_column(frame, f)[keep] for f in NAME_FIELDS]
        self.parts.append(business.str.cat(fields, sep=_SEP))  # type: ignore[arg-type]
        self.keys.append(_hashes(keys[keep]))

    def warnings(self, rows: pd.DataFrame, mapping: MappingSpec) -> tuple[pd.Series, pd.Series]:
        """(warning, to-fix note) of every row whose key names two people, indexed by source row; the
        customer's name is the last naming row's (as prepare/customers.py builds the body)."""
        empty = pd.Series(dtype="str")
        if not self.parts:
            return empty, empty
        # The valid rows of keys that repeat, then those of keys whose rows are not all spelled alike: only
        # these few are unpacked (a million keys' text, encoded or compared, would cost a hundred MB).
        numbers = [part.index.to_numpy(dtype=np.int64) for part in self.parts]
        top = max(int(n.max()) for n in numbers if len(n)) if any(len(n) for n in numbers) else 0
        valid_row = np.zeros(max(top, int(rows.index.max()) if len(rows) else 0) + 1, dtype=bool)
        valid_row[rows.index[(rows["status"] == "valid").to_numpy()].to_numpy(dtype=np.int64)] = True
        valid = [valid_row[n] for n in numbers]
        key_hashes = np.concatenate([k[v] for k, v in zip(self.keys, valid, strict=True)])
        repeated = _repeated(key_hashes)
        together = pd.concat([part[v] for part, v in zip(self.parts, valid, strict=True)])[repeated]
        key_hashes = key_hashes[repeated]
        self.parts, self.keys = [], []
        del valid_row, valid, repeated
        spelled = together[_in_several(key_hashes, _hashes(together.str.lower()))]
        del together
        if spelled.empty:
            return empty, empty
        unpacked = spelled.str.split(_SEP, n=len(NAME_FIELDS), expand=True)
        names = pd.DataFrame({f: unpacked[i].astype("str") for i, f in enumerate(("isBusiness", *NAME_FIELDS))},
                             index=unpacked.index)
        names = names[((names["lastName"] != "") | (names["company"] != "")).to_numpy()]
        keys = rows["customer_key"].reindex(names.index)
        repeated_named = keys.duplicated(keep=False).to_numpy()  # among the few rows left
        names, keys = names[repeated_named], keys[repeated_named]
        if names.empty:
            return empty, empty
        # Only keys whose rows spell more than one name reach the row-by-row comparison.
        spelled = (names["isBusiness"] + "\x1f" + names["lastName"].str.casefold() + "\x1f"
                   + names["firstName"].str.casefold() + "\x1f" + names["company"].str.casefold())
        several = spelled.groupby(keys.to_numpy()).transform("nunique") > 1
        column = name_column(mapping)
        warned: dict[int, str] = {}
        notes: dict[int, str] = {}
        for _, group in names[several.to_numpy()].groupby(keys[several.to_numpy()].to_numpy(), sort=False):
            records: dict[int, dict[str, str]] = {int(str(row)): {str(k): str(v) for k, v in values.items()}
                                                   for row, values in group.to_dict("index").items()}
            rows_in_order = sorted(records)
            sent_row = rows_in_order[-1]
            sent = records[sent_row]
            others = [r for r in rows_in_order[:-1] if different_people(records[r], sent)]
            if not others:
                continue
            sent_name = _display(sent)
            for row in others:
                own = _display(records[row])
                warned[row] = f"{column}: {PROBLEM}: {own!r} here, sent as {sent_name!r} (row {sent_row})"
                notes[row] = (f"this row names {own!r}, and the customer was given the name {sent_name!r} of row "
                              f"{sent_row}")
            listed = ", ".join(f"{_display(records[r])!r} (row {r})" for r in others)
            warned[sent_row] = f"{column}: {PROBLEM}: {listed} too, sent as {sent_name!r} (this row)"
            notes[sent_row] = f"the customer was given this row's name {sent_name!r}; its key also names {listed}"
        index = pd.Index(sorted(warned), name=rows.index.name)
        return (pd.Series([warned[r] for r in index], index=index, dtype="str"),
                pd.Series([notes[r] for r in index], index=index, dtype="str"))
