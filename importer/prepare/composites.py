"""Columns that hold several fields ("AUSTIN, TX 78701", a one-line address, "2018 HONDA ACCORD") split into them.

Each distinct value is read once (a file repeats its cities and descriptions), by these rules:

- **city_state_zip**: `CITY, ST 12345`, `CITY ST 12345-6789`, `CITY, State name 12345` and the Canadian
  `City, QC H2X 1Y4` are read by a fixed pattern (city, then a state or province, then a ZIP or postal code);
  anything else by `usaddress`, which tags US address parts. Canadian values are read by the pattern only:
  `usaddress` knows US addresses, and tags `QC H2X` as a state.
- **one_line**: `STREET, CITY, ST 12345` (or `STREET, CITY ST 12345`): the street is what comes before the
  city, state and ZIP read as above; without commas, `usaddress` tells the street from the city, and each city
  it reads with its state is remembered, so that later addresses ending in that city and state are split
  there without it.
  An apartment or suite stays on line 1 with its street.
- **description**: `YEAR MAKE MODEL [TRIM]`, in any order of year and make, with a VIN anywhere in it: a
  four-digit year from 1900, a VIN (16 to 18 letters and digits: a mistyped one is judged by the VIN
  normalizer), a make from MAKES (`CHEVY`, `VW`, `LAND ROVER`, ...); the
  model is the word after the make, with the next one when it is a number or the model is two words
  (`Model 3`, `Silverado 1500`, `Grand Cherokee`); the rest is the trim. Case is kept as written.

A part that cannot be read is left empty and said (`unread`), so that the row is a row to fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import usaddress

#: Makes as DMS exports write them (names and abbreviations), upper case.
MAKES = frozenset(" ".join((
    "ACURA ALFA AUDI BMW BUICK CADILLAC CHEVROLET CHEVY CHEV CHRYSLER DODGE FIAT FORD GENESIS GMC HONDA HYUNDAI",
    "INFINITI JAGUAR JEEP KIA LAND LANDROVER LEXUS LINCOLN MAZDA MERCEDES MERCEDES-BENZ MB MINI MITSUBISHI",
    "NISSAN POLESTAR PORSCHE RAM RIVIAN SUBARU TESLA TOYOTA VOLKSWAGEN VW VOLVO LUCID MASERATI BENTLEY FERRARI",
    "LAMBORGHINI ROLLS-ROYCE SMART SCION SATURN PONTIAC MERCURY OLDSMOBILE HUMMER SAAB SUZUKI ISUZU FREIGHTLINER",
    "HARLEY-DAVIDSON KAWASAKI YAMAHA TOY HYUN NISS MITS VOLKS MERC LINC CADI PORS INFI SUBA MAZD")).split())
#: Abbreviations a DMS writes for a make, with the make's name (a suggested `values:` map).
MAKE_ABBREVIATIONS = {"CHEVY": "Chevrolet", "CHEV": "Chevrolet", "VW": "Volkswagen", "VOLKS": "Volkswagen",
                      "MB": "Mercedes-Benz", "TOY": "Toyota", "HYUN": "Hyundai", "NISS": "Nissan",
                      "MITS": "Mitsubishi", "MERC": "Mercedes-Benz", "LINC": "Lincoln", "CADI": "Cadillac",
                      "PORS": "Porsche", "INFI": "Infiniti", "SUBA": "Subaru", "MAZD": "Mazda"}
#: Makes of two words, by their first word and the second.
_TWO_WORD_MAKES = {"LAND": "ROVER", "ALFA": "ROMEO", "MERCEDES": "BENZ", "ASTON": "MARTIN", "ROLLS": "ROYCE"}
#: First words of two-word models (`Grand Cherokee`, `Model 3`); and second words that belong to the model.
_MODEL_FIRST_WORDS = frozenset({"GRAND", "MODEL", "SANTA", "RANGE", "TOWN", "PT", "LAND", "CROWN", "MONTE", "NEW"})
_MODEL_SECOND_WORDS = frozenset({"SERIES", "CLASS"})

#: Longer values are no address nor description (a cell that swallowed other lines): not read, said unread.
MAX_LENGTH = 300

#: Each kind of column holding several fields → the fields it gives (base fields, without a vehicle prefix).
PARTS: dict[str, tuple[str, ...]] = {
    "city_state_zip": ("address.city", "address.state", "address.zip"),
    "one_line": ("address.line1", "address.city", "address.state", "address.zip"),
    "description": ("vehicleYear", "vehicleMake", "vehicleModel", "vehicleTrim", "vin"),
}
#: Parts whose absence is worth a warning (a description without a VIN or trim is complete).
REQUIRED: dict[str, tuple[str, ...]] = {
    "city_state_zip": PARTS["city_state_zip"],
    "one_line": PARTS["one_line"],
    "description": ("vehicleYear", "vehicleMake", "vehicleModel"),
}
#: How a warning names each part.
PART_WORDS = {"address.line1": "street", "address.city": "city", "address.state": "state/province",
              "address.zip": "ZIP/postal code", "vehicleYear": "model year", "vehicleMake": "known make",
              "vehicleModel": "model"}

_ZIP = r"[0-9]{5}(?:-?[0-9]{4})?|[0-9]{3,4}|[A-Za-z][0-9][A-Za-z] ?[0-9][A-Za-z][0-9]"
#: `CITY, ST 12345` and `CITY ST 12345` (a two-letter state), or `CITY, State name 12345` (a comma before it);
#: the ZIP may be missing (then said unread). A city has no digit.
_SEP = r"\.?(?:\s*,\s*|\s+)"
_CITY = r"(?P<city>[^\d,]*[^\d\s,.])"
_CSZ = (re.compile(rf"^{_CITY}{_SEP}(?P<state>[A-Za-z]{{2}})(?:{_SEP}(?P<zip>{_ZIP}))?\.?$"),
        re.compile(rf"^{_CITY}\s*,\s*(?P<state>[^\d,]*[^\d\s,.])(?:{_SEP}(?P<zip>{_ZIP}))?\.?$"))
#: A one-line address: the street, a comma, then the rest read as a city, state and ZIP.
_STREET_THEN = (re.compile(r"^(?P<street>.*[^\s,])\s*,\s*(?P<rest>[^,]+,[^,]+)$"),
                re.compile(r"^(?P<street>.*[^\s,])\s*,\s*(?P<rest>[^,]+)$"))
#: A one-line address ending with a two-letter state and a ZIP (or none), the rest before them.
_STATE_ZIP_END = re.compile(rf"^(?P<head>.*[^\s,])\s+(?P<state>[A-Za-z]{{2}})\.?(?:\s+(?P<zip>{_ZIP}))?$")
_YEAR = re.compile(r"^(?:19|20)[0-9]{2}$")
#: A VIN, or a mistyped one (a character short or too many, an O for a 0): the VIN normalizer judges it, as it
#: would in a column of its own, rather than a broken VIN becoming the trim.
_VIN = re.compile(r"^(?=.*[0-9])(?=.*[A-Z])[A-Z0-9]{16,18}$", re.IGNORECASE)
#: usaddress labels that are not the street line.
_PLACE_LABELS = frozenset({"PlaceName", "StateName", "ZipCode", "CountryName", "ZipPlus4"})

Parts = dict[str, str]


def _city_state_zip(value: str) -> Parts:
    return _city_state_zip_pattern(value) or _by_usaddress(value, street=False)


def _by_usaddress(value: str, street: bool) -> Parts:
    """The parts `usaddress` tags; nothing where it cannot tell them apart (a label given twice)."""
    try:
        tagged, _ = usaddress.tag(value)
    except usaddress.RepeatedLabelError:
        return {}
    parts = {"address.city": tagged.get("PlaceName", ""), "address.state": tagged.get("StateName", ""),
             "address.zip": tagged.get("ZipCode", "")}
    if street:
        parts["address.line1"] = " ".join(v for k, v in tagged.items() if k not in _PLACE_LABELS)
    return {k: v.strip(" ,") for k, v in parts.items()}


def _one_line_by_commas(value: str) -> Parts | None:
    for pattern in _STREET_THEN:
        found = pattern.match(value)
        if found:
            rest = _city_state_zip_pattern(found["rest"])
            if rest is not None:
                return {"address.line1": found["street"], **rest}
    return None


def _by_known_city(value: str, known: set[tuple[str, str]]) -> Parts | None:
    """`STREET CITY ST ZIP` without commas, split before a city the file has already shown with that state
    (the longest of the last three words that is one): usaddress need not read every address of a file."""
    found = _STATE_ZIP_END.match(value)
    if found is None:
        return None
    words = found["head"].split()
    state = found["state"].upper()
    for count in (3, 2, 1):
        street = words[:-count]
        city = " ".join(words[-count:])
        if len(words) > count and (city.upper(), state) in known and any(c.isdigit() for c in street[0]):
            return {"address.line1": " ".join(street), "address.city": city, "address.state": found["state"],
                    "address.zip": found["zip"] or ""}
    return None


def _one_line_reader() -> Callable[[str], Parts]:
    """A reader of one-line addresses that learns each city read with its state, so that a later address
    without commas in that city is split without usaddress (85 µs a value)."""
    known: set[tuple[str, str]] = set()

    def read(value: str) -> Parts:
        parts = _one_line_by_commas(value) or _by_known_city(value, known) or _by_usaddress(value, street=True)
        if parts.get("address.city") and parts.get("address.state") and parts.get("address.line1"):
            known.add((parts["address.city"].upper(), parts["address.state"].upper()))
        return parts

    return read


def _city_state_zip_pattern(value: str) -> Parts | None:
    for pattern in _CSZ:
        found = pattern.match(value.strip())
        if found:
            return {"address.city": found["city"], "address.state": found["state"],
                    "address.zip": found["zip"] or ""}
    return None


def _description(value: str) -> Parts:
    words = value.replace(",", " ").split()
    parts: Parts = {}
    rest: list[str] = []
    for word in words:
        if "vin" not in parts and _VIN.match(word):
            parts["vin"] = word
        elif "vehicleYear" not in parts and _YEAR.match(word):
            parts["vehicleYear"] = word
        elif word.upper().rstrip(":") != "VIN":
            rest.append(word)
    if rest and rest[0].upper() in MAKES | _TWO_WORD_MAKES.keys():
        take = 2 if len(rest) > 1 and _TWO_WORD_MAKES.get(rest[0].upper()) == rest[1].upper() else 1
        if take == 2 or rest[0].upper() in MAKES:
            parts["vehicleMake"] = " ".join(rest[:take])
            rest = rest[take:]
    if "vehicleMake" in parts and rest:
        take = 1
        if len(rest) > 1 and (rest[1].isdigit() or rest[0].upper() in _MODEL_FIRST_WORDS
                              or rest[1].upper() in _MODEL_SECOND_WORDS):
            take = 2
        parts["vehicleModel"] = " ".join(rest[:take])
        parts["vehicleTrim"] = " ".join(rest[take:])
    return parts


_READERS: dict[str, Callable[[], Callable[[str], Parts]]] = {
    "city_state_zip": lambda: _city_state_zip, "one_line": _one_line_reader, "description": lambda: _description}


@dataclass(frozen=True)
class Split:
    """A column holding several fields, split: each part's values, and where a part could not be read."""

    #: base field (`address.city`, `vehicleYear`) → its values ("" where the column is empty or it was unread)
    parts: dict[str, pd.Series]
    #: base field → True on the rows whose value is given but that part could not be read from it
    unread: dict[str, pd.Series]


def split(kind: str, values: pd.Series) -> Split:
    """The parts of `kind` (a key of PARTS) in `values` (trimmed text, "" where empty); each distinct value is
    read once."""
    read = _READERS[kind]()
    codes, uniques = pd.factorize(values)
    found = [read(str(u)) if u and len(str(u)) <= MAX_LENGTH else {} for u in uniques]
    given = (values != "").to_numpy()
    parts, unread = {}, {}
    for name in PARTS[kind]:
        column = pd.Series([f.get(name, "") for f in found], dtype="object").to_numpy(dtype=object)
        taken = pd.Series(column.take(codes) if len(codes) else [], index=values.index, dtype="str")
        parts[name] = taken
        if name in REQUIRED[kind]:
            unread[name] = pd.Series(given & (taken == "").to_numpy(), index=values.index)
    return Split(parts, unread)


#: The warning for a value some parts of which could not be read (error_codes.WARNINGS explains it).
UNREAD = "part not read, left out"


def unread_message(missing: list[str]) -> str:
    """The warning for a value from which the `missing` parts could not be read."""
    words = [PART_WORDS[m] for m in missing]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"{UNREAD} ({listed})"
