"""The rows to fix matched with the problems the state remembers: first seen, times seen, new or known.

A problem is a row's subject (its customer key, or a hash of its cells where it has none) and its error code.
The state holds those the last run reported; a problem reported again keeps its first night and counts one
more, a new one starts at this run, and one no longer reported is forgotten (`current` replaces the state's).
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd

from importer.read.reader import TEXT_DTYPE
from importer.send.state import problems_frame

#: A row reported this many nights running comes from the DMS every night: the page says to fix it there.
EVERY_NIGHT = 3


def subjects(keys: pd.Series, cells: pd.DataFrame) -> pd.Series:
    """What each row's problem is about: its customer key, or `#` and a hash of its cells (a key derived from
    the row's values, `~...`, changes when the row is fixed in part, and none is there for a row without one)."""
    keys = keys.reindex(cells.index).fillna("").astype("str")
    own = (keys != "") & ~keys.str.startswith("~")
    if own.all():
        return keys
    # Only the rows without a key of their own: hashing a text cell makes a Python string of it (a row's hash
    # is its own cells', whichever rows are hashed beside it).
    without = cells.loc[~own]
    hashed = pd.Series(pd.util.hash_pandas_object(without, index=False).to_numpy(), index=without.index)
    return keys.where(own, "#" + hashed.map("{:016x}".format).astype("str"))


class KnownProblems:
    """This run's problems beside the last run's; `current()` is what the state keeps for the next run.

    Both are frames (send/state.PROBLEM_COLUMNS), matched by one vectorized lookup per chunk of rows: a dict of
    a Python object per problem held 100 MB for each side at a migration's 300,000 rows to fix."""

    def __init__(self, remembered: pd.DataFrame | None = None, now: datetime.datetime | None = None) -> None:
        remembered = problems_frame() if remembered is None else remembered.drop_duplicates(["subject", "code"])
        self._remembered_at = pd.Index(_keys(remembered["subject"], remembered["code"]))
        self._first_seen = remembered["first_seen"].reset_index(drop=True)
        self._times_seen = remembered["times_seen"].to_numpy(dtype=np.int64)
        self.now = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
        self._parts: list[pd.DataFrame] = []
        #: rows to fix whose problem is new, and those reported by an earlier run too
        self.new_rows = 0
        self.known_rows = 0

    def mark(self, row_subjects: pd.Series, codes: pd.Series) -> tuple[pd.Series, pd.Series]:
        """Each row's first seen (ISO 8601) and times seen, counting this run. A problem reported before keeps
        its first night and counts one more; a new one starts tonight (rows sharing a problem agree)."""
        at = self._remembered_at.get_indexer(_keys(row_subjects, codes))
        known = at >= 0
        times = np.ones(len(at), dtype=np.int64)
        times[known] = self._times_seen[at[known]] + 1
        first = pd.Series(self.now, index=row_subjects.index, dtype=TEXT_DTYPE)
        first[known] = self._first_seen.take(at[known]).to_numpy()
        tonight = pd.DataFrame({"subject": row_subjects.astype(TEXT_DTYPE), "code": codes.astype(TEXT_DTYPE),
                                "first_seen": first, "times_seen": times})
        self._parts.append(tonight.drop_duplicates(["subject", "code"]))
        self.new_rows += int((~known).sum())
        self.known_rows += int(known.sum())
        return first.astype("str"), pd.Series(times.astype(str), index=row_subjects.index, dtype="str")

    def current(self) -> pd.DataFrame:
        """This run's problems, one row each (PROBLEM_COLUMNS): what the state keeps for the next run."""
        if not self._parts:
            return problems_frame()
        return pd.concat(self._parts, ignore_index=True).drop_duplicates(["subject", "code"], ignore_index=True)


def _keys(row_subjects: pd.Series, codes: pd.Series) -> pd.Series:
    """One text per (subject, code), to look problems up by."""
    return row_subjects.astype(TEXT_DTYPE).str.cat(codes.astype(TEXT_DTYPE).to_numpy(), sep="\x1f")
