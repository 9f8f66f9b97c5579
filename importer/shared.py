"""Phones and emails that many customers of one file share: the dealer's own number, or a placeholder.

Sent, such a contact merges strangers (the server's duplicate search matches on contact and name), so it
is dropped from every customer that carries it, each of their rows warned with how many share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

CONTACT_COLUMN = r"^(?:phone|email)[0-9]+$"
PROBLEM = "shared by more customers than the mapping's shared_contact_limit; dropped for all of them"


def contact_table(frame: pd.DataFrame, keys: pd.Series) -> pd.DataFrame:
    """One line per non-empty phone or email of `frame`'s rows: row, column, value, customer key."""
    parts = []
    for column in frame.columns:
        name = str(column)
        if not pd.Series([name]).str.fullmatch(CONTACT_COLUMN).iloc[0]:
            continue
        values = frame[name]
        given = (values != "").to_numpy()
        parts.append(pd.DataFrame({"row": frame.index[given], "column": name, "value": values[given].to_numpy(),
                                   "key": keys[given].to_numpy()}))
    if not parts:
        return pd.DataFrame({"row": pd.Series(dtype="int64"), "column": pd.Series(dtype="str"),
                             "value": pd.Series(dtype="str"), "key": pd.Series(dtype="str")})
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class SharedContacts:
    """The contacts of a file that more than `limit` customer keys carry, and where they occur."""

    #: row, column, value, customers (how many keys share the value): one line per occurrence
    hits: pd.DataFrame

    @classmethod
    def find(cls, contacts: pd.DataFrame, limit: int) -> SharedContacts:
        pairs = contacts.drop_duplicates(["value", "key"])
        customers = pairs["value"].value_counts()
        shared = customers[customers > limit]
        hits = contacts[contacts["value"].isin(shared.index)]
        return cls(hits.assign(customers=hits["value"].map(shared).astype("int64")).reset_index(drop=True))

    def __bool__(self) -> bool:
        return not self.hits.empty

    def warnings(self, source_of: dict[str, str]) -> pd.Series:
        """The warning text of each row that carries a shared contact, indexed by row."""
        hits = self.hits
        texts = (hits["column"].map(source_of).astype("str") + ": " + hits["value"].astype("str")
                 + " is carried by " + hits["customers"].astype("str")
                 + " different customers in this file (the dealer's own number or a placeholder?); "
                 "dropped for all of them")
        return texts.groupby(hits["row"].to_numpy()).agg("; ".join)

    def drop(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` (normalized rows indexed by row) with every shared contact emptied."""
        frame = frame.copy()
        for column, hits in self.hits.groupby("column"):
            rows = pd.Index(hits["row"]).intersection(frame.index)
            frame.loc[rows, str(column)] = ""
        return frame
