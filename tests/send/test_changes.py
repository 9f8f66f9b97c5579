"""Changes by category between two bodies, and the mass-change guard's edges."""

from __future__ import annotations

from typing import Any

import pytest

from importer.send.changes import MIN_KNOWN, ChangeTally, bits, changed, guard, shown, words


def body(first: str = "Ann", last: str = "Lee", phones: tuple[str, ...] = ("+13105550101",), ok: bool = True,
         email: str = "", line1: str = "", vins: tuple[str, ...] = (), company: str = "",
         locale: str = "") -> dict[str, Any]:
    customer: dict[str, Any] = {"customerKey": "1", "firstName": first, "lastName": last}
    if company:
        customer.update(company=company, isBusiness=True)
    if locale:
        customer["preferredLocale"] = locale
    if line1:
        customer["addresses"] = [{"line1": line1, "city": "Springfield", "state": "IL", "zip": "62701"}]
    if email:
        customer["emails"] = [{"emailAddress": email, "okToEmail": ok}]
    if phones:
        customer["phoneNumbers"] = [{"phoneNumber": p, "label": "CELL", "okToCall": ok, "okToText": ok} for p in phones]
    result: dict[str, Any] = {"customer": customer, "validateVin": True, "searchForDuplicate": True}
    if vins:
        result["vehicles"] = [{"vin": v, "vehicleMake": "Honda"} for v in vins]
    return result


@pytest.mark.parametrize(("new", "expected"), [
    (body(), ()),
    (body(first="Lee", last="Ann"), ("name",)),
    (body(company="Lee Motors"), ("company",)),
    (body(phones=("+13105550199",)), ("phones",)),
    (body(email="ann@example.com"), ("emails",)),
    (body(line1="12 Elm St"), ("addresses",)),
    (body(vins=("1HGCM82633A004352",)), ("vehicles",)),
    (body(ok=False), ("consent",)),
    (body(locale="fr_CA"), ("locale",)),
    (body(phones=("+13105550101", "+13105550102")), ("phones",)),  # a phone added is not a consent change
    (body(first="Bo", phones=("+13105550199",), line1="1 Main St"), ("name", "phones", "addresses")),
])
def test_categories(new: dict[str, Any], expected: tuple[str, ...]):
    assert changed(body(), new) == expected


def test_phone_order_alone_is_no_change():
    assert changed(body(phones=("+13105550101", "+13105550102")), body(phones=("+13105550102", "+13105550101"))) == ()


def test_words_and_bits_round_trip():
    assert words(bits(["phones", "addresses"])) == "phones;addresses"
    assert words(bits(["created"])) == "created"


def test_examples_show_old_and_new_values():
    tally = ChangeTally()
    old, new = body(vins=("1HGCM82633A004352",)), body(phones=("+13105550199",), vins=("1M8GDM9AXKP042788",))
    tally.add("1", changed(old, new), old, new)
    phones = tally.examples["phones"][0]
    assert (phones["old"], phones["new"]) == ("+13105550101 (cell)", "+13105550199 (cell)")
    vehicles = tally.examples["vehicles"][0]
    assert vehicles["added"] == ["Honda (1M8GDM9AXKP042788)"]
    assert vehicles["removed"] == ["Honda (1HGCM82633A004352)"]
    assert shown("name", body(first="Lee", last="Ann")) == "Lee Ann"


def _tally(category: str, count: int) -> ChangeTally:
    tally = ChangeTally()
    for i in range(count):
        tally.add(str(i), (category,), body(), body(first="Lee", last="Ann"))
    return tally


def test_the_guard_needs_fifty_known_customers():
    assert MIN_KNOWN == 50
    assert guard(_tally("name", 49), 49, 25) is None, "49 known customers, every one renamed: no guard"
    assert guard(_tally("name", 50), 50, 25) is not None


def test_exactly_the_share_passes_and_one_more_stops():
    assert guard(_tally("phones", 25), 100, 25) is None
    mass = guard(_tally("phones", 26), 100, 25)
    assert mass is not None
    assert [(c, n) for c, n, _ in mass.over] == [("phones", 26)]
    message = mass.message()
    assert "phones: 26 of 100 known customers (26.0%)" in message
    assert message.count("→") == 3, "three examples old → new"
    assert "--allow-mass-change" in message


def test_unguarded_categories_never_stop():
    assert guard(_tally("vehicles", 100), 100, 25) is None
