"""Rows → customer requests: grouping by customer key and merging each group into one request body.

Grouping: rows sharing a customer key (the DMS customer number) are one customer. A row without a key
(a layout that maps none, or an empty cell) is identified by its normalized name, phones, emails and
address instead, so repeat rows of one person still merge; its key reads `~` and a hash.

Merging a group, in file order:
- names, locale: each field from the last row where it is not empty (the latest record wins);
- address: all of its fields from the last row that has any, so two addresses are never mixed;
- phones, emails: every distinct one (by E.164 number, by lower-cased address) in order of first
  appearance, with the label of its first row and the consent of its last;
- vehicles: every distinct one (by VIN, or by year, make and model where there is no VIN), fields from
  the last row that mentions it (the latest mileage).
A list with nothing in it is omitted, never sent empty: the API reads `[]` as "delete them all".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from importer.mapping import ADDRESS_FIELDS, VEHICLE_FIELDS, MappingSpec

_SCALARS = ("firstName", "middleName", "lastName", "company", "preferredLocale")
_IDENTITY = ("lastName", "firstName", "company", "address.zip", "address.line1")


@dataclass(frozen=True, slots=True)
class CustomerRequest:
    #: customer key, or `~` and a stable hash of the identity
    key: str
    #: every input row this request answers for
    source_rows: tuple[int, ...]
    #: JSON-ready, exactly what is POSTed
    body: dict[str, Any]


def encode_body(body: dict[str, Any]) -> str:
    """The one JSON text of a body: what is POSTed, written to --payloads and hashed for the state."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def customer_keys(frame: pd.DataFrame) -> pd.Series:
    """The grouping key of every row: its customer key, or a hash of its identity where it has none."""
    empty = pd.Series("", index=frame.index, dtype="str")
    keys = frame.get("customerKey", empty)
    missing = keys == ""
    if not missing.any():
        return keys
    parts = [frame[c].str.lower() for c in _IDENTITY if c in frame]
    parts += [frame[c] for c in frame.columns if str(c).startswith(("phone", "email")) and "." not in str(c)]
    identity = parts[0].str.cat(parts[1:], sep="\x1f") if parts else empty  # type: ignore[arg-type]
    codes, uniques = pd.factorize(identity[missing])
    hashed = np.array(["~" + hashlib.sha256(u.encode()).hexdigest()[:16] for u in uniques], dtype=object)
    return keys.mask(missing, pd.Series(hashed.take(codes), index=keys[missing].index, dtype="str"))


class _Columns:
    """The frame's columns as Python lists: positional access without pandas overhead per value."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.rows = frame.index.to_numpy()
        self.data = {str(c): frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns}

    def get(self, column: str, position: int) -> Any:
        values = self.data.get(column)
        return values[position] if values is not None else None


def _contacts(cols: _Columns, positions: list[int], slots: list[tuple[str, str]], value_key: str,
              flag_keys: tuple[str, ...]) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for position in positions:
        for column, label in slots:
            value = cols.get(column, position)
            if not value:
                continue
            entry = merged.setdefault(value, {value_key: value, **({"label": label} if label else {})})
            ok = cols.get(column + ".ok", position)
            if ok is not None:
                entry.update(dict.fromkeys(flag_keys, bool(ok)))
    return list(merged.values())


def _vehicles(cols: _Columns, positions: list[int]) -> list[dict[str, Any]]:
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for position in positions:
        if not cols.get("vehicle.send", position):
            continue
        vehicle = {f: v for f in VEHICLE_FIELDS if (v := cols.get(f, position))}
        vin = vehicle.get("vin")
        identity = ("vin", vin) if vin else ("ymm", *(vehicle[f].casefold() for f in
                                                      ("vehicleYear", "vehicleMake", "vehicleModel")))
        merged.setdefault(identity, {}).update(vehicle)
    return list(merged.values())


def _body(mapping: MappingSpec, cols: _Columns, key: str, positions: list[int], validate_vin: bool) -> dict[str, Any]:
    customer: dict[str, Any] = {}
    if not key.startswith("~"):
        customer["customerKey"] = key
    for field in _SCALARS:
        values = [v for p in positions if (v := cols.get(field, p))]
        if values:
            customer[field] = values[-1]
    if cols.get("isBusiness", positions[-1]):
        customer["isBusiness"] = True
    address_rows = [p for p in positions if any(cols.get(f"address.{f}", p) for f in ADDRESS_FIELDS)]
    if address_rows:
        last = address_rows[-1]
        address = {f: v for f in ADDRESS_FIELDS if (v := cols.get(f"address.{f}", last))}
        customer["addresses"] = [{**address, **{k: v for k, v in mapping.address_defaults.items() if k not in address}}]
    emails = _contacts(cols, positions, [(f"email{i}", c.label) for i, c in enumerate(mapping.emails, 1)],
                       "emailAddress", ("okToEmail",))
    if emails:
        customer["emails"] = emails
    phones = _contacts(cols, positions, [(f"phone{i}", c.label) for i, c in enumerate(mapping.phones, 1)],
                       "phoneNumber", ("okToCall", "okToText"))
    if phones:
        customer["phoneNumbers"] = phones
    body: dict[str, Any] = {"customer": customer}
    vehicles = _vehicles(cols, positions)
    if vehicles:
        body["vehicles"] = vehicles
    body["validateVin"] = validate_vin
    body["searchForDuplicate"] = True
    return body


def build_requests(frame: pd.DataFrame, keys: pd.Series, mapping: MappingSpec, *,
                   validate_vin: bool = True) -> Iterator[CustomerRequest]:
    """One request per customer, in the order each customer first appears in the file.

    `frame` holds the rows to send (normalized canonical columns, indexed by source row), `keys` their
    grouping keys.
    """
    if frame.empty:
        return
    codes, uniques = pd.factorize(keys)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    cols = _Columns(frame)
    for group_number, group in enumerate(np.split(order, bounds)):
        positions = group.tolist()
        key = str(uniques[group_number])
        yield CustomerRequest(key, tuple(int(cols.rows[p]) for p in positions),
                              _body(mapping, cols, key, positions, validate_vin))
