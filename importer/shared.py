"""Phones and emails that many customers of one file share: the dealer's own number, or a placeholder.

Sent, such a contact merges strangers (the server's duplicate search matches on contact and name), so it
is dropped from every customer that carries it, each of their rows warned with how many share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CONTACT_COLUMN = r"(?:phone|email)[0-9]+"
PROBLEM = "shared by more customers than the mapping's shared_contact_limit; dropped for all of them"


@dataclass
class ContactCollector:
    """The phones and emails of a file's rows, gathered chunk by chunk, as 64-bit hashes of the value and
    of the customer key: a million rows' contacts cost tens of MB this way, where text would cost hundreds
    (a false match would need a 64-bit collision)."""

    columns: list[str] = field(default_factory=list)
    _rows: list[np.ndarray] = field(default_factory=list)
    _columns: list[np.ndarray] = field(default_factory=list)
    _values: list[np.ndarray] = field(default_factory=list)
    _keys: list[np.ndarray] = field(default_factory=list)

    def add(self, frame: pd.DataFrame, keys: pd.Series, rows: np.ndarray) -> None:
        """The contacts of `frame`'s rows where `rows` (a mask) is true; `keys` their customer keys."""
        names = [str(c) for c in frame.columns if re.fullmatch(CONTACT_COLUMN, str(c))]
        if not names:
            return
        key_hashes = pd.util.hash_array(keys.to_numpy(dtype=object)[rows])
        index = frame.index.to_numpy(dtype=np.int64)[rows]
        for name in names:
            if name not in self.columns:
                self.columns.append(name)
            values = frame[name].to_numpy(dtype=object)[rows]
            given = values != ""
            self._rows.append(index[given])
            self._columns.append(np.full(int(given.sum()), self.columns.index(name), dtype=np.int8))
            self._values.append(pd.util.hash_array(values[given]))
            self._keys.append(key_hashes[given])

    def shared(self, limit: int, valid_rows: pd.Index) -> SharedContacts:
        """The contacts of `valid_rows` that more than `limit` different customer keys carry."""
        rows = np.concatenate(self._rows) if self._rows else np.zeros(0, dtype=np.int64)
        if not len(rows):
            return SharedContacts(pd.DataFrame({"row": [], "column": [], "customers": []}))
        self._rows = []
        valid_row = np.zeros(int(max(rows.max(), valid_rows.max() if len(valid_rows) else 0)) + 1, dtype=bool)
        valid_row[valid_rows.to_numpy(dtype=np.int64)] = True
        valid = valid_row[rows]
        del valid_row
        values = np.concatenate(self._values)
        self._values = []
        keys = np.concatenate(self._keys)
        self._keys = []
        # Sorted by value then key: a value's distinct keys are the key changes within its run.
        order = np.lexsort((keys, values))
        order = order[valid[order]]
        sorted_values, sorted_keys = values[order], keys[order]
        del order, keys
        new_value = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
        new_pair = new_value | np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
        del sorted_keys
        starts = np.flatnonzero(new_value)
        customers = np.add.reduceat(new_pair.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
        many = customers > limit
        shared, counts = sorted_values[starts[many]], customers[many]
        del sorted_values, new_value, new_pair
        hit = valid & np.isin(values, shared)
        columns = np.concatenate(self._columns)
        self._columns = []
        return SharedContacts(pd.DataFrame({
            "row": rows[hit], "column": [self.columns[c] for c in columns[hit]],
            "customers": counts[np.searchsorted(shared, values[hit])]}))


@dataclass(frozen=True)
class SharedContacts:
    """Where a file's shared contacts occur."""

    #: row, column, customers (how many keys share the value): one line per occurrence
    hits: pd.DataFrame

    def __bool__(self) -> bool:
        return not self.hits.empty

    def warnings(self, source_of: dict[str, str]) -> pd.Series:
        """The warning text of each row that carries a shared contact, indexed by row."""
        hits = self.hits
        texts = (hits["column"].map(source_of).astype("str") + ": the value is carried by "
                 + hits["customers"].astype("str") + " different customers in this file (the dealer's own "
                 "number or a placeholder?); dropped for all of them")
        return texts.groupby(hits["row"].to_numpy()).agg("; ".join)

    def drop(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` (normalized rows indexed by row) with every shared contact emptied."""
        frame = frame.copy()
        for column, hits in self.hits.groupby("column"):
            rows = pd.Index(hits["row"]).intersection(frame.index)
            frame.loc[rows, str(column)] = ""
        return frame
