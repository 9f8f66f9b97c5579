"""After a run: different customer keys that the API answered with one customerUuid (strangers merged)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from importer.report.outcomes import append_notes
from importer.status import Status

_SAVED = (Status.SUCCESS.value, Status.UNCHANGED.value)
#: keys a note names; it is on every row of every one of them, so a uuid that took thousands of keys
#: (a server matching on a shared placeholder, say) would otherwise cost their square in text
NAMED_KEYS = 10


def flag_merged(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The row table with a warning on every row of a customerUuid that several customer keys share, and
    the counts for summary.json (uuids, customer keys and rows involved).

    The server's duplicate search matches on contact and name, so two different DMS customers with a
    shared contact and the same name can land on one myKaarma customer: the data of one now overwrites
    the other's every night, which only a person can sort out.

    Worked out on numbers (each uuid's and key's place among the distinct ones) rather than on a million
    rows' strings: only the uuids that are shared have their keys spelled out.
    """
    involved, notes, counts = _shared_uuids(table)
    if not involved.any():
        return table, counts
    return table.assign(warnings=append_notes(table["warnings"], involved, notes)), counts


def _shared_uuids(table: pd.DataFrame) -> tuple[np.ndarray, pa.Array, dict[str, int]]:
    """The rows involved (a mask), the note for each of them in order, and the counts. A function of its own
    so that the per-row numbers it needs are gone before the warnings column is copied."""
    saved = (table["status"].isin(_SAVED) & (table["customer_uuid"] != "")).to_numpy()
    uuid_codes, uuids = pd.factorize(table["customer_uuid"], use_na_sentinel=False)
    key_codes, keys = pd.factorize(table["customer_key"], use_na_sentinel=False)
    pairs = np.unique(uuid_codes[saved].astype(np.int64) * len(keys) + key_codes[saved])
    pair_uuids, pair_keys = np.divmod(pairs, len(keys))
    keys_per_uuid = np.bincount(pair_uuids, minlength=len(uuids))
    shared = keys_per_uuid > 1
    involved = saved & shared[uuid_codes]
    counts = {"uuids": int(shared.sum()), "customer_keys": int(keys_per_uuid[shared].sum()),
              "rows": int(involved.sum())}
    of_shared = shared[pair_uuids]
    notes = pd.Series(keys.take(pair_keys[of_shared]), dtype="str").groupby(pair_uuids[of_shared]).agg(_note)
    # notes is ordered by uuid code: each involved row's note is found by its uuid's code
    places = np.searchsorted(notes.index.to_numpy(), uuid_codes[involved])
    return involved, pa.array(notes).take(pa.array(places)), counts


def _note(same: pd.Series) -> str:
    keys = sorted(same)
    named = ", ".join(keys[:NAMED_KEYS]) + (f" and {len(keys) - NAMED_KEYS:,} more" if len(keys) > NAMED_KEYS else "")
    return (f"customer keys {named} were all saved as one myKaarma customer by the API's duplicate search; "
            "check them in myKaarma")
