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
#: How the problem tally and every row's warning begin (error_codes.WARNINGS explains them by it).
WARNING_START = "the value is carried by"
PROBLEM = f"{WARNING_START} more customers than the mapping's shared_contact_limit; dropped for all of them"


def _hashes(values: pd.Series) -> np.ndarray:
    # Hashed by pandas from the column's own array (pyarrow-backed where pandas makes "str" so): several
    # times faster than through Python strings, and the same call on every pandas the floors allow.
    hashed: np.ndarray = pd.util.hash_pandas_object(values.astype("str"), index=False).to_numpy()
    return hashed


@dataclass
class ContactCollector:
    """The phones and emails of a file's rows, gathered chunk by chunk as 64-bit hashes of the value and
    of the customer key, one slot per row and contact column (0: none): a million rows cost a few tens of
    MB this way, where text would cost hundreds (a false match would need a 64-bit collision)."""

    columns: list[str] = field(default_factory=list)
    _rows: list[np.ndarray] = field(default_factory=list)
    _values: list[np.ndarray] = field(default_factory=list)
    _keys: list[np.ndarray] = field(default_factory=list)

    def add(self, frame: pd.DataFrame, keys: pd.Series, rows: np.ndarray) -> None:
        """The contacts of `frame`'s rows where `rows` (a mask) is true; `keys` their customer keys."""
        if not self.columns:
            self.columns = [str(c) for c in frame.columns if re.fullmatch(CONTACT_COLUMN, str(c))]
        if not self.columns:
            return
        values = np.zeros((len(frame), len(self.columns)), dtype=np.uint64)
        for place, name in enumerate(self.columns):
            given = rows & (frame[name] != "").to_numpy(dtype=bool)
            values[given, place] = _hashes(frame[name])[given] | np.uint64(1)  # never 0, which means none
        self._rows.append(frame.index.to_numpy(dtype=np.int64))
        self._values.append(values)
        self._keys.append(_hashes(keys))

    def shared(self, limit: int, valid_rows: pd.Index) -> SharedContacts:
        """The contacts of `valid_rows` that more than `limit` different customer keys carry."""
        empty = SharedContacts(pd.DataFrame({"row": [], "column": [], "customers": []}))
        if not self._rows:
            return empty
        top = max([int(rows.max()) for rows in self._rows if len(rows)] + [int(v) for v in valid_rows[-1:]])
        valid_row = np.zeros(top + 1, dtype=bool)
        valid_row[valid_rows.to_numpy(dtype=np.int64)] = True
        for rows, values in zip(self._rows, self._values, strict=True):
            values[~valid_row[rows]] = 0
        del valid_row
        # Only a value on more than `limit` rows can have more than `limit` customers: find those first
        # (one sort of the values, in place), then count distinct keys for those few alone.
        every = np.concatenate([values[values != 0] for values in self._values])
        every.sort()
        starts = np.flatnonzero(np.r_[True, every[1:] != every[:-1]])
        lengths = np.diff(np.r_[starts, len(every)])
        candidates = every[starts[lengths > limit]]
        del every, starts, lengths
        found = []
        for rows, values, keys in zip(self._rows, self._values, self._keys, strict=True):
            hit_row, hit_column = np.nonzero(np.isin(values, candidates))
            found.append(pd.DataFrame({"row": rows[hit_row], "column": hit_column,
                                       "value": values[hit_row, hit_column], "key": keys[hit_row]}))
        self._rows, self._values, self._keys = [], [], []
        hits = pd.concat(found, ignore_index=True)
        customers = hits.groupby("value")["key"].nunique()
        hits = hits.assign(customers=hits["value"].map(customers).to_numpy(dtype=np.int64))
        hits = hits[hits["customers"] > limit]
        if hits.empty:
            return empty
        return SharedContacts(pd.DataFrame({"row": hits["row"].to_numpy(dtype=np.int64),
                                            "column": [self.columns[c] for c in hits["column"]],
                                            "customers": hits["customers"].to_numpy(dtype=np.int64)}))


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
        texts = (hits["column"].map(source_of).astype("str") + f": {WARNING_START} "
                 + hits["customers"].astype("str") + " different customers in this file (the dealer's own "
                 "number or a placeholder?); dropped for all of them")
        return texts.groupby(hits["row"].to_numpy()).agg("; ".join)

    def drop(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` (normalized rows indexed by row) with every shared contact emptied: new columns where
        there are some, the others shared with `frame` (a copy of the whole frame would double it)."""
        emptied = {str(column): frame[str(column)].mask(frame.index.isin(hits["row"]), "")
                   for column, hits in self.hits.groupby("column")}
        return frame.assign(**emptied)
