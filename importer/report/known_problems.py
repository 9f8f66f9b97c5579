"""The rows to fix matched with the problems the state remembers: first seen, times seen, new or known.

A problem is a row's subject (its customer key, or a hash of its cells where it has none) and its error code.
The state holds those the last run reported; a problem reported again keeps its first night and counts one
more, a new one starts at this run, and one no longer reported is forgotten (`current` replaces the state's).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

import numpy as np
import pandas as pd

from importer.send.state import Problem

#: A row reported this many nights running comes from the DMS every night: the page says to fix it there.
EVERY_NIGHT = 3


def subjects(keys: pd.Series, cells: pd.DataFrame) -> pd.Series:
    """What each row's problem is about: its customer key, or `#` and a hash of its cells (a key derived from
    the row's values, `~...`, changes when the row is fixed in part, and none is there for a row without one)."""
    hashed = pd.Series(pd.util.hash_pandas_object(cells, index=False).to_numpy(), index=cells.index)
    by_cells = "#" + hashed.map("{:016x}".format).astype("str")
    keys = keys.reindex(cells.index).fillna("").astype("str")
    own = (keys != "") & ~keys.str.startswith("~")
    return keys.where(own, by_cells)


class KnownProblems:
    """This run's problems beside the last run's; `current` is what the state keeps for the next run."""

    def __init__(self, remembered: Mapping[tuple[str, str], Problem] | None = None,
                 now: datetime.datetime | None = None) -> None:
        self.remembered = remembered or {}
        self.now = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
        self.current: dict[tuple[str, str], Problem] = {}
        #: rows to fix whose problem is new, and those reported by an earlier run too
        self.new_rows = 0
        self.known_rows = 0

    def mark(self, row_subjects: pd.Series, codes: pd.Series) -> tuple[pd.Series, pd.Series]:
        """Each row's first seen (ISO 8601) and times seen, counting this run."""
        first, times = [], []
        for subject, code in zip(row_subjects.tolist(), codes.tolist(), strict=True):
            problem = self.current.get((subject, code))
            if problem is None:
                before = self.remembered.get((subject, code))
                problem = Problem(subject, code, before.first_seen, before.times_seen + 1) if before is not None \
                    else Problem(subject, code, self.now, 1)
                self.current[(subject, code)] = problem
            first.append(problem.first_seen)
            times.append(problem.times_seen)
        seen = np.array(times, dtype=np.int64)
        self.new_rows += int((seen == 1).sum())
        self.known_rows += int((seen > 1).sum())
        return (pd.Series(first, index=row_subjects.index, dtype="str"),
                pd.Series(seen.astype(str), index=row_subjects.index, dtype="str"))
