"""What a new body changes against the one last saved, by category, with old → new values; the mass-change guard.

A category is a part of the customer a person thinks of as one thing: `name` (first, middle, last), `company`
(and isBusiness), `phones`, `emails`, `addresses`, `vehicles`, `consent` (the okTo* flags), `locale`. Only
known customers whose body changed are compared, so that an unchanged night costs nothing here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("name", "company", "phones", "emails", "addresses", "vehicles", "consent", "locale")
#: The categories a shifted or swapped column rewrites for every customer: the guard watches these.
GUARDED = ("name", "phones", "emails", "addresses")
#: A customer new to the state.
CREATED = "created"
#: A known customer saved before bodies were kept: what changed cannot be told until it is sent once.
UNKNOWN = "unknown"
#: Every word a customer's `changes` can hold, in the order summary.json lists them.
WORDS = (CREATED, *CATEGORIES, UNKNOWN)
_BIT = {word: 1 << i for i, word in enumerate(WORDS)}
#: The guard judges a file only when the state knows at least this many of its customers: below that, a
#: share is a handful of customers, and a first import of a few rows would be refused for no reason.
MIN_KNOWN = 50
#: Examples kept per category for the page; the guard's message names the first three.
EXAMPLES = 20
_NAME = ("firstName", "middleName", "lastName")
_CONSENT = ("okToCall", "okToText", "okToEmail")


def bits(words: Iterable[str]) -> int:
    """Change words as the bits one number holds (a million customers' changes in a small array)."""
    value = 0
    for word in words:
        value |= _BIT[word]
    return value


def words(value: int) -> str:
    """Bits back to the words results.csv shows, joined by `;`."""
    return ";".join(word for word in WORDS if value & _BIT[word])


def _customer(body: Mapping[str, Any]) -> Mapping[str, Any]:
    customer = body.get("customer")
    return customer if isinstance(customer, Mapping) else {}


def _contacts(body: Mapping[str, Any], name: str, value_key: str) -> list[tuple[str, str]]:
    return [(str(c.get(value_key, "")), str(c.get("label", ""))) for c in _customer(body).get(name, ())]


def _consents(body: Mapping[str, Any]) -> dict[str, tuple[object, ...]]:
    customer = _customer(body)
    found = {}
    for name, value_key in (("phoneNumbers", "phoneNumber"), ("emails", "emailAddress")):
        for contact in customer.get(name, ()):
            found[str(contact.get(value_key, ""))] = tuple(contact.get(flag) for flag in _CONSENT)
    return found


def _vehicle_id(vehicle: Mapping[str, Any]) -> str:
    vin = vehicle.get("vin")
    if vin:
        return str(vin)
    return " ".join(str(vehicle.get(f, "")) for f in ("vehicleYear", "vehicleMake", "vehicleModel")).strip()


def _part(category: str, body: Mapping[str, Any]) -> object:
    """What of a body a category compares."""
    customer = _customer(body)
    if category == "name":
        return tuple(customer.get(f, "") for f in _NAME)
    if category == "company":
        return customer.get("company", ""), bool(customer.get("isBusiness", False))
    if category == "phones":
        return sorted(_contacts(body, "phoneNumbers", "phoneNumber"))
    if category == "emails":
        return sorted(_contacts(body, "emails", "emailAddress"))
    if category == "addresses":
        return [sorted(a.items()) for a in customer.get("addresses", ())]
    if category == "vehicles":
        return sorted((_vehicle_id(v), sorted(v.items())) for v in body.get("vehicles", ()))
    if category == "consent":
        return _consents(body)
    return customer.get("preferredLocale", "")


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """The categories in which `new` differs from `old`."""
    found = []
    for category in CATEGORIES:
        if category == "consent":
            before, after = _consents(old), _consents(new)
            # Consent is about the contacts both bodies hold: a phone added or removed is `phones`.
            if any(before[value] != after[value] for value in before.keys() & after.keys()):
                found.append(category)
        elif _part(category, old) != _part(category, new):
            found.append(category)
    return tuple(found)


def shown(category: str, body: Mapping[str, Any]) -> str:
    """A category's value as a person reads it."""
    customer = _customer(body)
    if category == "name":
        return " ".join(str(customer[f]) for f in _NAME if customer.get(f)) or "(none)"
    if category == "company":
        text = str(customer.get("company", "")) or "(none)"
        return text + (" (business)" if customer.get("isBusiness") else "")
    if category == "phones":
        return ", ".join(v + (f" ({label.lower()})" if label else "")
                         for v, label in _contacts(body, "phoneNumbers", "phoneNumber")) or "(none)"
    if category == "emails":
        return ", ".join(v for v, _ in _contacts(body, "emails", "emailAddress")) or "(none)"
    if category == "addresses":
        return "; ".join(", ".join(str(a[f]) for f in ("line1", "line2", "city", "state", "zip") if a.get(f))
                         for a in customer.get("addresses", ())) or "(none)"
    if category == "vehicles":
        return ", ".join(_vehicle_text(v) for v in body.get("vehicles", ())) or "(none)"
    if category == "consent":
        return ", ".join(f"{value}: " + " ".join(f"{flag}={'yes' if ok else 'no'}" for flag, ok
                                                   in zip(_CONSENT, flags, strict=True) if ok is not None)
                         for value, flags in _consents(body).items()) or "(none)"
    return str(customer.get("preferredLocale", "")) or "(none)"


def _vehicle_text(vehicle: Mapping[str, Any]) -> str:
    described = " ".join(str(vehicle[f]) for f in ("vehicleYear", "vehicleMake", "vehicleModel") if vehicle.get(f))
    vin = vehicle.get("vin")
    return f"{described} ({vin})" if vin and described else str(vin or described)


def _vehicle_moves(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Vehicles added and removed (a vehicle kept with new mileage is neither)."""
    before = {_vehicle_id(v): v for v in old.get("vehicles", ())}
    after = {_vehicle_id(v): v for v in new.get("vehicles", ())}
    return ([_vehicle_text(v) for k, v in after.items() if k not in before],
            [_vehicle_text(v) for k, v in before.items() if k not in after])


@dataclass
class ChangeTally:
    """Customers per change word, and up to EXAMPLES customers per category with their old and new values."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, key: str, categories: Sequence[str], old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        for category in categories:
            self.counts[category] += 1
            kept = self.examples.setdefault(category, [])
            if len(kept) < EXAMPLES:
                example: dict[str, Any] = {"customer_key": key, "key": _shown_key(key, new),
                                           "old": shown(category, old), "new": shown(category, new)}
                if category == "vehicles":
                    example["added"], example["removed"] = _vehicle_moves(old, new)
                kept.append(example)

    def count(self, word: str, customers: int = 1) -> None:
        self.counts[word] += customers

    def example_keys(self) -> set[str]:
        """The customer keys of the examples: a few per category."""
        return {e["customer_key"] for examples in self.examples.values() for e in examples}

    def saved_only(self, saved_keys: set[str]) -> dict[str, list[dict[str, Any]]]:
        """The examples of customers in `saved_keys` (those the run saved), by category."""
        kept = {category: [e for e in examples if e["customer_key"] in saved_keys]
                for category, examples in self.examples.items()}
        return {category: examples for category, examples in kept.items() if examples}

    def as_dict(self) -> dict[str, int]:
        """Customers per change word, every word listed (summary.json's `changes`)."""
        return {word: int(self.counts.get(word, 0)) for word in WORDS}


def _shown_key(key: str, body: Mapping[str, Any]) -> str:
    """The customer as the page names it: its key, or its name where the key is derived."""
    return key if not key.startswith("~") else shown("name", body)


@dataclass(frozen=True)
class MassChange:
    """A run that would rewrite too many known customers: what the guard tells the person who runs it."""

    #: customers of the file the state knows
    known: int
    #: percent of them a guarded category may change
    limit: float
    #: (category, customers, their examples) for each guarded category over the limit
    over: tuple[tuple[str, int, tuple[dict[str, Any], ...]], ...]

    def message(self, command: str = "run") -> str:
        parts = []
        for category, count, examples in self.over:
            shown_examples = "; ".join(f"{e['key']}: {e['old']} → {e['new']}" for e in examples[:3])
            parts.append(f"{category}: {count:,} of {self.known:,} known customers "
                         f"({100 * count / self.known:.1f}%), e.g. {shown_examples}")
        verb = "sends nothing" if command == "run" else "would send nothing"
        return (f"mass change: more than {self.limit:g}% (--max-changed) of the customers the state knows would "
                f"change in {', '.join(c for c, _, _ in self.over)}; the run {verb}. "
                + " | ".join(parts)
                + ". Check the export's columns; if the change is meant, run again with --allow-mass-change")


def guard(tally: ChangeTally, known: int, limit: float) -> MassChange | None:
    """A MassChange when a guarded category would change more than `limit` percent of the known customers
    (at least MIN_KNOWN of them); exactly the limit passes."""
    if known < MIN_KNOWN:
        return None
    over = tuple((category, tally.counts[category], tuple(tally.examples.get(category, ())))
                 for category in GUARDED if tally.counts[category] * 100 > limit * known)
    return MassChange(known, limit, over) if over else None
