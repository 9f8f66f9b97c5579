"""Rows → customer requests: grouping by customer key and merging each group into one request body.

Grouping: rows sharing a customer key (the DMS customer number) are one customer. A row without a key
(a layout that maps none, or an empty cell) is identified by its normalized name, phones, emails and
address instead, so repeat rows of one person still merge; its key reads `~`, the name and ZIP, and a hash
(`~Lee Ann 02134 #3f2a9c1d0e4b`).

Merging a group, in file order:
- name: first, middle, last name, company and isBusiness together, from the last row that names someone
  (a last name or a company); a field that row leaves empty comes from the latest earlier row naming the
  same person, never from another person's row (two_people.py warns of keys naming two people);
- locale: from the last row where it is not empty (the latest record wins);
- address: all of its fields from the last row that has any, so two addresses are never mixed;
- phones, emails: every distinct one (by E.164 number, by lower-cased address) in order of first
  appearance, with the label of its first row and the consent of its last;
- vehicles: every distinct one (by VIN, or by year, make and model where there is no VIN), fields from
  the last row that mentions it (the latest mileage).
A list with nothing in it is omitted, never sent empty: the API reads `[]` as "delete them all".
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from importer import __version__
from importer.memory import release_memory
from importer.prepare.by_value import text_of
from importer.prepare.mapping import ADDRESS_FIELDS, VEHICLE_FIELDS, MappingSpec, vehicle_groups, vehicle_prefix
from importer.prepare.normalize import text_column, vehicle_send_column
from importer.prepare.two_people import NAME_FIELDS, different_people

#: A row names someone when it has one of these (a person needs a last name, a business a company).
NAMING_FIELDS = ("lastName", "company")
_IDENTITY = ("lastName", "firstName", "company", "address.zip", "address.line1")


class CustomerRequest(NamedTuple):
    """One customer's request (a NamedTuple: see send/pool.Outcome)."""

    #: customer key, or `~` and a stable hash of the identity
    key: str
    #: every input row this request answers for
    source_rows: tuple[int, ...]
    #: JSON-ready, exactly what is POSTed
    body: dict[str, Any]


def _derived_keys(frame: pd.DataFrame, missing: pd.Series, readable: bool) -> pd.Series:
    """Keys of the rows without one, from their identity: `~`, the name and ZIP a person can read, and a
    hash of the whole identity (name, address, phones, emails) that tells two namesakes apart."""
    parts = [frame[c].str.lower() for c in _IDENTITY if c in frame]
    parts += [frame[c] for c in frame.columns if str(c).startswith(("phone", "email")) and "." not in str(c)]
    # Every mapping maps a last name or a company, so there is always a first part to join onto.
    identity = parts[0].str.cat(parts[1:], sep="\x1f")  # type: ignore[arg-type]
    codes, uniques = pd.factorize(identity[missing])
    if readable:
        shown = [text_column(frame, c)[missing] for c in ("lastName", "firstName", "company", "address.zip")]
        joined = shown[0].str.cat(shown[1:], sep=" ")  # type: ignore[arg-type]
        label = joined.str.replace(" +", " ", regex=True).str.strip()
        hashes = np.array([hashlib.sha256(u.encode()).hexdigest()[:12] for u in uniques], dtype=object)
        named = "~" + label + " #" + pd.Series(hashes.take(codes), index=label.index, dtype="str")
        return named.str.replace("~ #", "~#", regex=False)
    hashed = np.array(["~" + hashlib.sha256(u.encode()).hexdigest()[:16] for u in uniques], dtype=object)
    return pd.Series(hashed.take(codes), index=identity[missing].index, dtype="str")


def customer_keys(frame: pd.DataFrame) -> pd.Series:
    """The grouping key of every row: its customer key, or one derived from its identity where it has none."""
    keys = text_column(frame, "customerKey")
    missing = keys == ""
    if not missing.any():
        return keys
    return keys.mask(missing, _derived_keys(frame, missing, readable=True))


def legacy_keys(frame: pd.DataFrame) -> pd.Series:
    """The keys mk-import derived before they were readable (`~` and a hash), "" where the row has a key:
    a state made then knows its customers by these."""
    keys = text_column(frame, "customerKey")
    missing = keys == ""
    if not missing.any():
        return pd.Series("", index=frame.index, dtype="str")
    return pd.Series("", index=frame.index, dtype="str").mask(missing, _derived_keys(frame, missing, readable=False))


class _BodyBuilder:
    """Builds request bodies from a frame's columns held as Python lists.

    Bodies are built one customer at a time in a Python loop (a million of them on a large file), so
    columns are fetched once up front and each body touches only list items.
    """

    def __init__(self, frame: pd.DataFrame, mapping: MappingSpec, validate_vin: bool) -> None:
        def column(name: str) -> list[Any] | None:
            if name not in frame:
                return None
            # Through Arrow: Python values with None for a missing one, at a quarter of the cost of pandas'
            # astype(object) and where() (which copy the column twice on the way).
            values: list[Any] = pa.array(frame[name]).to_pylist()
            return values

        self.validate_vin = validate_vin
        self.address_defaults = mapping.address_defaults
        self.names = [(f, c) for f in NAME_FIELDS if (c := column(f)) is not None]
        self.naming = [c for f, c in self.names if f in NAMING_FIELDS]
        self.locale = column("preferredLocale")
        self.business = column("isBusiness")
        self.address = [(f, c) for f in ADDRESS_FIELDS if (c := column(f"address.{f}")) is not None]
        self.emails = [(c, column(f"email{i}.ok"), contact.label) for i, contact in enumerate(mapping.emails, 1)
                       if (c := column(f"email{i}")) is not None]
        self.phones = [(c, column(f"phone{i}.ok"), contact.label) for i, contact in enumerate(mapping.phones, 1)
                       if (c := column(f"phone{i}")) is not None]
        # One (fields, send) pair per vehicle group of a row (`vehicles:` maps several).
        self.vehicles = [([(f, c) for f in VEHICLE_FIELDS if (c := column(vehicle_prefix(g) + f)) is not None],
                          column(vehicle_send_column(g))) for g in vehicle_groups(frame.columns)]

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
        for position in positions:
            for fields, send in self.vehicles:
                if send is None or not send[position]:
                    continue
                vehicle = {f: v for f, values in fields if (v := values[position])}
                vin = vehicle.get("vin")
                identity = ("vin", vin) if vin else ("ymm", *(vehicle[f].casefold() for f in
                                                              ("vehicleYear", "vehicleMake", "vehicleModel")))
                merged.setdefault(identity, {}).update(vehicle)
        return list(merged.values())

    def _name_of(self, position: int) -> dict[str, str]:
        name = dict.fromkeys(NAME_FIELDS, "")
        name.update((field, values[position] or "") for field, values in self.names)
        name["isBusiness"] = "1" if self.business is not None and self.business[position] else ""
        return name

    def _complete_name(self, name: dict[str, str], named: int, backwards: list[int]) -> None:
        """Name fields the chosen row leaves empty, from the latest earlier row naming the same person
        ("LEE" after "LEE, ANN" keeps ANN); a row naming someone else gives nothing."""
        chosen = self._name_of(named)
        for position in backwards:
            if position == named or not any(values[position] for values in self.naming):
                continue
            if different_people(self._name_of(position), chosen):
                continue
            for field, values in self.names:
                if field not in name and values[position]:
                    name[field] = values[position]

    def body(self, key: str, positions: list[int]) -> dict[str, Any]:
        customer: dict[str, Any] = {}
        if not key.startswith("~"):
            customer["customerKey"] = key
        backwards = positions[::-1]
        # The whole name from one row: the last that names someone (else the last with any name field).
        named = next((p for p in backwards if any(values[p] for values in self.naming)),
                     next((p for p in backwards if any(values[p] for _, values in self.names)), positions[-1]))
        name = {field: values[named] for field, values in self.names if values[named]}
        if len(positions) > 1 and len(name) < len(self.names):
            self._complete_name(name, named, backwards)
        customer.update((field, name[field]) for field in NAME_FIELDS if field in name)
        if self.locale is not None:
            locale = next((self.locale[p] for p in backwards if self.locale[p]), None)
            if locale:
                customer["preferredLocale"] = locale
        if self.business is not None and self.business[named]:
            customer["isBusiness"] = True
        for position in backwards:
            address = {f: v for f, values in self.address if (v := values[position])}
            if address:
                for default, value in self.address_defaults.items():
                    address.setdefault(default, value)
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


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_column(fingerprints: np.ndarray) -> pd.Series:
    """The fingerprints as 16 hexadecimal digits each, one text column made from the numbers' bytes: a Python
    string for each of a million customers cost the plan 150 MB at its peak."""
    nibbles = np.frombuffer(fingerprints.astype(">u8").tobytes(), dtype=np.uint8).reshape(-1, 8)
    digits = np.empty((len(fingerprints), 16), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX_DIGITS[nibbles >> 4], _HEX_DIGITS[nibbles & 15]
    offsets = np.arange(0, 16 * len(fingerprints) + 1, 16, dtype=np.int32)
    text = pa.StringArray.from_buffers(len(fingerprints), pa.py_buffer(offsets), pa.py_buffer(digits.tobytes()))
    return text_of(text)


class CustomerGroup(NamedTuple):
    """The rows of one customer, before its body is built (a NamedTuple: see send/pool.Outcome)."""

    key: str
    source_rows: tuple[int, ...]
    #: a hash of the group's normalized rows, the mapping's constants and the program version: groups
    #: with equal fingerprints build equal bodies, so a rerun can skip building an unchanged one (a
    #: false match would need a 64-bit collision with the customer's own previous rows)
    fingerprint: str
    #: the rows' places in `builder`'s batch
    positions: tuple[int, ...]
    builder: _BodyBuilder


class Requests:
    """The customers of a prepared file, in the order each first appears; bodies built on demand.

    `frame` holds the rows to send (normalized canonical columns, indexed by source row), `keys` their
    grouping keys. Bodies are built from Python copies of the columns, made for one batch of customers
    at a time so that memory stays flat however many customers the file has.
    """

    #: customers whose rows are copied out of the frame together
    BATCH = 20_000
    #: rows hashed together for the fingerprints
    HASHED_AT_ONCE = 100_000

    def __init__(self, frame: pd.DataFrame, keys: pd.Series, mapping: MappingSpec, *, validate_vin: bool) -> None:
        self._frame, self._keys = frame, keys
        self._mapping, self._validate_vin = mapping, validate_vin
        context = [__version__, validate_vin, mapping.address_defaults, [c.label for c in mapping.phones],
                   [c.label for c in mapping.emails], [str(c) for c in frame.columns]]
        self._context = np.uint64(int.from_bytes(hashlib.sha256(orjson.dumps(context)).digest()[:8], "big"))

    @functools.cached_property
    def _layout(self) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(keys, row positions in group order, group starts, group ends, fingerprints), groups in file order.

        Held for the whole run, so kept compact: the keys as pandas holds them and the fingerprints as
        64-bit numbers; Python strings (about 60 bytes each) are made for one batch at a time."""
        codes, uniques = pd.factorize(self._keys)
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        ends = np.r_[starts[1:], len(order)]
        fingerprints = self._fingerprints(order, starts, ends)
        release_memory()  # what grouping and hashing every row needed, before the per-customer table is made
        return pd.Index(uniques, dtype="str"), order, starts, ends, fingerprints

    def table(self) -> pd.DataFrame:
        """One line per customer, in sending order: key, fingerprint, rows."""
        if self._frame.empty:
            return pd.DataFrame({"key": pd.Series(dtype="str"), "fingerprint": pd.Series(dtype="str"),
                                 "rows": pd.Series(dtype="int64")})
        keys, _, starts, ends, fingerprints = self._layout
        return pd.DataFrame({"key": pd.Series(keys, dtype="str"),
                             "fingerprint": _hex_column(fingerprints), "rows": ends - starts})

    def groups(self, selected: np.ndarray | None = None) -> Iterator[CustomerGroup]:
        """The customers (those `selected`, a mask over table(), if given) in sending order."""
        if self._frame.empty:
            return
        keys, order, starts, ends, fingerprints = self._layout
        numbers = np.flatnonzero(selected) if selected is not None else np.arange(len(keys))
        source_rows = self._frame.index.to_numpy()
        for batch in np.array_split(numbers, max(1, -(-len(numbers) // self.BATCH))):
            if not len(batch):
                continue
            lengths = ends[batch] - starts[batch]
            before = np.cumsum(lengths) - lengths  # where each group begins within the batch
            rows = order[np.repeat(starts[batch] - before, lengths) + np.arange(lengths.sum())]
            # What the previous batches' bodies, requests and answers freed: handed back, or resident
            # memory creeps up through the whole sending (by ~300 MB over a million customers).
            release_memory()
            builder = _BodyBuilder(self._frame.take(rows), self._mapping, self._validate_vin)
            batch_rows = source_rows[rows].tolist()
            place = 0
            spelled = _hex_column(fingerprints[batch]).tolist()
            for key, fingerprint, size in zip(keys[batch].tolist(), spelled, lengths.tolist(),
                                              strict=True):
                yield CustomerGroup(str(key), tuple(batch_rows[place:place + size]), fingerprint,
                                    tuple(range(place, place + size)), builder)
                place += size

    def _fingerprints(self, order: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """One 64-bit hash per group of its rows' hashes, in file order, and of the context; vectorized.

        Each row hash is re-hashed with its place in the group (order matters: the last row wins), the
        group's values are combined with xor, and the context is mixed in last.
        """
        # A slice of rows at a time (a row's hash does not depend on the others): hashing a text column
        # makes a Python string of each distinct value, a million at once for the whole frame.
        size = self.HASHED_AT_ONCE
        row_hashes = np.concatenate([pd.util.hash_pandas_object(self._frame.iloc[at:at + size], index=False).to_numpy()
                                     for at in range(0, len(self._frame), size)])[order]
        place = np.arange(len(order)) - np.repeat(starts, ends - starts)
        salted = pd.util.hash_array(row_hashes ^ (place.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
        combined = np.bitwise_xor.reduceat(salted, starts)
        return pd.util.hash_array(combined ^ self._context)

    @staticmethod
    def request(group: CustomerGroup) -> CustomerRequest:
        return CustomerRequest(group.key, group.source_rows, group.builder.body(group.key, list(group.positions)))

    def __iter__(self) -> Iterator[CustomerRequest]:
        return (self.request(group) for group in self.groups())
