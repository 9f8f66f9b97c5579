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


class _BodyBuilder:
    """Builds request bodies from a frame's columns held as Python lists.

    Bodies are built one customer at a time in a Python loop (a million of them on a large file), so
    columns are fetched once up front and each body touches only list items.
    """

    def __init__(self, frame: pd.DataFrame, mapping: MappingSpec, validate_vin: bool) -> None:
        def column(name: str) -> list[Any] | None:
            if name not in frame:
                return None
            values = frame[name]
            return values.astype(object).where(values.notna(), None).tolist()

        self.validate_vin = validate_vin
        self.address_defaults = mapping.address_defaults
        self.scalars = [(f, c) for f in _SCALARS if (c := column(f)) is not None]
        self.business = column("isBusiness")
        self.address = [(f, c) for f in ADDRESS_FIELDS if (c := column(f"address.{f}")) is not None]
        self.emails = [(c, column(f"email{i}.ok"), contact.label) for i, contact in enumerate(mapping.emails, 1)
                       if (c := column(f"email{i}")) is not None]
        self.phones = [(c, column(f"phone{i}.ok"), contact.label) for i, contact in enumerate(mapping.phones, 1)
                       if (c := column(f"phone{i}")) is not None]
        self.vehicle = [(f, c) for f in VEHICLE_FIELDS if (c := column(f)) is not None]
        self.send_vehicle = column("vehicle.send")

    @staticmethod
    def _contacts(positions: list[int], slots: list[tuple[list[Any], list[Any] | None, str]], value_key: str,
                  flag_keys: tuple[str, ...]) -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for position in positions:
            for values, oks, label in slots:
                value = values[position]
                if not value:
                    continue
                entry = merged.get(value)
                if entry is None:
                    entry = merged[value] = {value_key: value, "label": label} if label else {value_key: value}
                ok = oks[position] if oks is not None else None
                if ok is not None:
                    for flag in flag_keys:
                        entry[flag] = bool(ok)
        return list(merged.values())

    def _vehicles(self, positions: list[int]) -> list[dict[str, Any]]:
        merged: dict[tuple[str, ...], dict[str, Any]] = {}
        send = self.send_vehicle
        for position in positions:
            if send is None or not send[position]:
                continue
            vehicle = {f: v for f, values in self.vehicle if (v := values[position])}
            vin = vehicle.get("vin")
            identity = ("vin", vin) if vin else ("ymm", *(vehicle[f].casefold() for f in
                                                          ("vehicleYear", "vehicleMake", "vehicleModel")))
            merged.setdefault(identity, {}).update(vehicle)
        return list(merged.values())

    def body(self, key: str, positions: list[int]) -> dict[str, Any]:
        customer: dict[str, Any] = {}
        if not key.startswith("~"):
            customer["customerKey"] = key
        backwards = positions[::-1]
        for field, values in self.scalars:
            for position in backwards:
                if values[position]:
                    customer[field] = values[position]
                    break
        if self.business is not None and self.business[positions[-1]]:
            customer["isBusiness"] = True
        for position in backwards:
            address = {f: v for f, values in self.address if (v := values[position])}
            if address:
                for name, value in self.address_defaults.items():
                    address.setdefault(name, value)
                customer["addresses"] = [address]
                break
        emails = self._contacts(positions, self.emails, "emailAddress", ("okToEmail",))
        if emails:
            customer["emails"] = emails
        phones = self._contacts(positions, self.phones, "phoneNumber", ("okToCall", "okToText"))
        if phones:
            customer["phoneNumbers"] = phones
        body: dict[str, Any] = {"customer": customer}
        vehicles = self._vehicles(positions)
        if vehicles:
            body["vehicles"] = vehicles
        body["validateVin"] = self.validate_vin
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
    builder = _BodyBuilder(frame, mapping, validate_vin)
    source_rows = frame.index.tolist()
    for key, group in zip(uniques.tolist(), np.split(order, bounds), strict=True):
        positions = group.tolist()
        yield CustomerRequest(str(key), tuple(source_rows[p] for p in positions), builder.body(str(key), positions))
