"""After a run: different customer keys that the API answered with one customerUuid (strangers merged)."""

from __future__ import annotations

import pandas as pd

from importer.status import Status

_SAVED = (Status.SUCCESS.value, Status.UNCHANGED.value)


def flag_merged(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The row table with a warning on every row of a customerUuid that several customer keys share, and
    the counts for summary.json (uuids, customer keys and rows involved).

    The server's duplicate search matches on contact and name, so two different DMS customers with a
    shared contact and the same name can land on one myKaarma customer: the data of one now overwrites
    the other's every night, which only a person can sort out.
    """
    saved = table["status"].isin(_SAVED) & (table["customer_uuid"] != "")
    pairs = table.loc[saved, ["customer_uuid", "customer_key"]].drop_duplicates()
    sizes = pairs.groupby("customer_uuid").size()
    sizes = sizes[sizes > 1]
    counts = {"uuids": len(sizes), "customer_keys": int(sizes.sum()), "rows": 0}
    if sizes.empty:
        return table, counts
    shared = pairs[pairs["customer_uuid"].isin(sizes.index)].groupby("customer_uuid")["customer_key"].agg(sorted)
    involved = saved & table["customer_uuid"].isin(shared.index)
    counts["rows"] = int(involved.sum())
    text = shared.map(lambda keys: "customer keys " + ", ".join(keys) + " were all saved as one myKaarma customer "
                      "by the API's duplicate search; check them in myKaarma")
    note = table.loc[involved, "customer_uuid"].map(text).astype("str")
    current = table.loc[involved, "warnings"]
    warnings = table["warnings"].copy()
    warnings.loc[involved] = current.where(current == "", current + "; ") + note
    return table.assign(warnings=warnings), counts
