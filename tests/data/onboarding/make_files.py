"""Writes the onboarding layouts that tests/test_suggest.py holds: DMS exports no built-in mapping fits.

    python -m tests.data.onboarding.make_files

Values come from sample_data/generate.py's seeded messy generator; the layouts imitate real exports:
Dealertrack (terse capital headers, two vehicles a row), Auto/Mate (one `LAST, FIRST` name column with
businesses in it), PBS (dotted headers, semicolons), a Quebec dealer (French headers, postal codes,
provinces), a file whose headers say nothing, and one whose headers partly lie (`PHONE2` holding
emails, a `LAST FIRST MI` name column). An .xlsx and a .zip copy of two of them go beside.

Two report-writer exports join fields into one column: `LAST, FIRST` names with a `CITY STATE ZIP` column and a
`YEAR MAKE MODEL` description beside a VIN column; `First Last` names with a one-line address and a description
holding its VIN. Their expected payloads are not made from them: the same rows are written with every field in
a column of its own (a twin file), and the payloads are what `validate` makes of the twin.
"""

from __future__ import annotations

import csv
import io
import random
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from sample_data.generate import VEHICLES, Messy, write_sheet

HERE = Path(__file__).parent
ROWS = 80


def _csv(path: Path, rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8") -> None:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


def _vehicle(m: Messy) -> list[str]:
    make, model = m.r.choice(VEHICLES)
    return [m.vin(), str(m.r.randint(2006, 2026)), make, model, m.mileage()]


def dealertrack(m: Messy) -> list[list[str]]:
    rows = [["CUSTNO", "FNAME", "LNAME", "ADDR1", "CITY", "ST", "ZIP", "HPHONE", "CPHONE", "EMAIL", "VIN1", "YR1",
             "MAKE1", "MODEL1", "ODOM1", "VIN2", "YR2", "MAKE2", "MODEL2", "ODOM2", "LASTSVCDATE"]]
    for i in range(ROWS):
        p = m.person(i + 1)
        second = _vehicle(m) if m.chance(0.4) else ["", "", "", "", ""]
        rows.append([p.key, p.first.upper(), (p.last or p.company).upper(), p.street.upper(), p.place[0].upper(),
                     p.place[1], m.zip_code(p.zip_code), m.phone(p.phone2_digits), m.phone(p.phone_digits),
                     m.email(p.email), *_vehicle(m), *second,
                     f"{m.r.randint(1, 12)}/{m.r.randint(1, 28)}/{m.r.randint(2019, 2026)}"])
    return rows


def automate(m: Messy) -> list[list[str]]:
    rows = [["Cust #", "Customer Name", "Address", "City", "State", "Zip", "Home Phone", "Cell Phone", "E-Mail",
             "Do Not Call", "VIN", "Year", "Make", "Model", "Odometer", "Sale Date"]]
    for i in range(ROWS):
        p = m.person(i + 1)
        if p.company:
            name = p.company.upper()
        elif not p.last or p.last == "N/A":
            name = p.first.upper()
        else:
            middle = f" {m.r.choice('ABCDEJKMRT')}" if m.chance(0.3) else ""
            name = f"{p.last.upper()}, {p.first.upper()}{middle}"
        rows.append([p.key, name, p.street, p.place[0], m.state(p.place), m.zip_code(p.zip_code),
                     m.phone(p.phone2_digits), m.phone(p.phone_digits), m.email(p.email), m.flag(0.1), *_vehicle(m),
                     f"{m.r.randint(2015, 2026)}-{m.r.randint(1, 12):02d}-{m.r.randint(1, 28):02d}"])
    return rows


def pbs(m: Messy) -> list[list[str]]:
    rows = [["Cust.Id", "Cust.FirstName", "Cust.LastName", "Cust.Address.Line1", "Cust.Address.City",
             "Cust.Address.State", "Cust.Address.Zip", "Cust.Phone.Home", "Cust.Phone.Cell", "Cust.Phone.Work",
             "Cust.Email", "Cust.Email.OptOut", "Veh.VIN", "Veh.Year", "Veh.Make", "Veh.Model", "Veh.Odometer",
             "Deal.Number"]]
    for i in range(ROWS):
        p = m.person(i + 1)
        work = m.phone(m.phone_digits(p.place)) if m.chance(0.2) else ""
        rows.append([p.key, p.first, p.last or p.company, p.street, p.place[0], m.state(p.place),
                     m.zip_code(p.zip_code), m.phone(p.phone2_digits), m.phone(p.phone_digits), work,
                     m.email(p.email), m.flag(0.1), *_vehicle(m), f"D{70000 + i}"])
    return rows


QC_FIRST = ["Jean", "Marie", "Pierre", "Sylvie", "François", "Nathalie", "Luc", "Geneviève", "Mathieu", "Émilie",
            "Olivier", "Chloé", "Stéphane", "Isabelle", "Benoît"]
QC_LAST = ["Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin", "Gagné",
           "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron"]
QC_PLACES = [("Montréal", "QC", ("514", "438"), "H"), ("Québec", "QC", ("418", "581"), "G"),
             ("Laval", "QC", ("450",), "H"), ("Gatineau", "QC", ("819",), "J"), ("Ottawa", "ON", ("613",), "K")]
QC_STREETS = ["rue Sainte-Catherine", "boul. René-Lévesque", "rue Principale", "av. du Parc", "ch. Sainte-Foy"]


def quebec(m: Messy) -> list[list[str]]:
    rows = [["No client", "Prénom", "Nom", "Adresse", "Ville", "Province", "Code postal", "Tél. maison",
             "Tél. cellulaire", "Courriel", "Consentement courriel", "NIV", "Année", "Marque", "Modèle",
             "Kilométrage"]]
    r = m.r
    for i in range(ROWS):
        city, province, areas, letter = r.choice(QC_PLACES)
        first, last = r.choice(QC_FIRST), r.choice(QC_LAST)
        postal = f"{letter}{r.randint(1, 9)}{r.choice('ABCEGHJKLMNPRSTVXY')} {r.randint(1, 9)}" \
                 f"{r.choice('ABCEGHJKLMNPRSTVXY')}{r.randint(0, 9)}"
        if m.chance(0.2):
            postal = postal.replace(" ", "").lower()
        phone = f"{r.choice(areas)}{r.randint(2, 9)}{r.randint(10, 99)}{r.randint(0, 9999):04d}"
        cell = f"{r.choice(areas)}{r.randint(2, 9)}{r.randint(10, 99)}{r.randint(0, 9999):04d}"
        email = f"{first[0]}{last}{r.randint(1, 99)}@videotron.ca".lower().replace("é", "e").replace("ô", "o") \
            .replace("è", "e").replace("ç", "c")
        rows.append([str(300000 + i), first, last, f"{r.randint(1, 9999)} {r.choice(QC_STREETS)}", city, province,
                     postal, m.phone(phone) if m.chance(0.7) else "", m.phone(cell), email if m.chance(0.8) else "",
                     r.choice(["O", "N", "Oui", "Non", "1", "0"]).replace("O", "Y").replace("Yui", "Yes")
                     .replace("Non", "No"), *_vehicle(m)])
    return rows


def silent(m: Messy) -> list[list[str]]:
    rows = [[f"Field {n}" for n in range(1, 15)]]
    for i in range(ROWS):
        p = m.person(i + 1)
        rows.append([p.key, p.first, p.last or p.company, p.street, p.place[0], p.place[1],
                     m.zip_code(p.zip_code), m.phone(p.phone_digits), m.email(p.email), *_vehicle(m)])
    return rows


def lying(m: Messy) -> list[list[str]]:
    """A report-writer export: one `LAST FIRST MI` name column, a "PHONE2" holding emails, numbered fields."""
    rows = [["CUST-NO", "NAME", "ADDRESS", "CITY", "STATE", "ZIP", "PHONE", "PHONE2", "F07", "F08", "F09", "F10",
             "F11"]]
    for i in range(ROWS):
        p = m.person(i + 1)
        if not p.last or p.last == "N/A":
            p.last = "NGUYEN"
        initial = f" {m.r.choice('ABCDEJKMRT')}" if m.chance(0.4) else ""
        name = p.company.upper() if p.company else f"{p.last.upper()} {p.first.upper()}{initial}"
        rows.append([p.key, name, p.street.upper(), p.place[0].upper(), p.place[1], m.zip_code(p.zip_code),
                     m.phone(p.phone_digits), m.email(p.email), *_vehicle(m)])
    return rows


_TWIN = ["key", "first", "last", "company", "street", "city", "state", "zip", "phone1", "phone2", "email", "year",
         "make", "model", "trim", "vin"]
TWIN_MAPPING = """customer_key: key
customer: {firstName: first, lastName: last, company: company}
address: {line1: street, city: city, state: state, zip: zip}
phones: [{column: phone1%s}, {column: phone2%s}]
emails: [{column: email, label: home}]
vehicle: {vin: vin, vehicleYear: year, vehicleMake: make, vehicleModel: model, vehicleTrim: trim}
defaults:
  address: {country: US, type: PRIMARY, addressType: P}
values:
  vehicleMake: {CHEVY: Chevrolet, VW: Volkswagen}
"""
_TRIMS = ["", "", "EX", "LX", "SE", "XLT", "LIMITED", "SPORT"]


def _twin_row(m: Messy, i: int, upper: bool) -> list[str]:
    """One customer with every field in its own column (see _TWIN); a few cells a report writer left out."""
    p = m.person(i + 1)
    if not p.company and (not p.last or p.last == "N/A"):
        p.last = "Nguyen"
    first, last, company = p.first, p.last, p.company
    make, model = m.r.choice(VEHICLES)
    year = "" if m.chance(0.03) else str(m.r.randint(2006, 2026))  # a description without its year
    trim = m.r.choice(_TRIMS)
    zip_code = "" if m.chance(0.03) else m.zip_code(p.zip_code)  # a city and state without their ZIP
    row = [p.key, first, last, company, p.street, p.place[0], m.state(p.place), zip_code,
           m.phone(p.phone_digits), m.phone(p.phone2_digits), m.email(p.email), year, make, model, trim, m.vin()]
    if upper:
        for field in ("first", "last", "company", "street", "city", "model", "trim"):
            row[_TWIN.index(field)] = row[_TWIN.index(field)].upper()
    return row


def _field(row: list[str], name: str) -> str:
    return row[_TWIN.index(name)]


def _description(row: list[str]) -> str:
    return " ".join(v for v in (_field(row, "year"), _field(row, "make"), _field(row, "model"), _field(row, "trim"))
                    if v)


def report_writer(twins: list[list[str]]) -> list[list[str]]:
    """`LAST, FIRST` names, one `CITY STATE ZIP` column, a `YEAR MAKE MODEL [TRIM]` description beside the VIN."""
    rows = [["CUST#", "CUSTOMER NAME", "STREET ADDRESS", "CITY STATE ZIP", "PHONE 1", "PHONE 2", "EMAIL", "VEHICLE",
             "VIN"]]
    for t in twins:
        name = _field(t, "company") or f"{_field(t, 'last')}, {_field(t, 'first')}"
        place = f"{_field(t, 'city')}, {_field(t, 'state')} {_field(t, 'zip')}".strip()
        rows.append([_field(t, "key"), name, _field(t, "street"), place, _field(t, "phone1"), _field(t, "phone2"),
                     _field(t, "email"), _description(t), _field(t, "vin")])
    return rows


def one_line(twins: list[list[str]]) -> list[list[str]]:
    """`First Last` names, the whole address in one column, the VIN inside the vehicle description."""
    rows = [["Account", "Name", "Address", "Phone", "Cell", "Email", "Vehicle"]]
    for i, t in enumerate(twins):
        name = _field(t, "company") or f"{_field(t, 'first')} {_field(t, 'last')}"
        street, city, state, zip_code = (_field(t, f) for f in ("street", "city", "state", "zip"))
        # Mostly with commas; some written the way a label printer joins them, without.
        address = f"{street}, {city}, {state} {zip_code}" if i % 5 else f"{street} {city} {state} {zip_code}"
        rows.append([_field(t, "key"), name, address.strip(), _field(t, "phone1"), _field(t, "phone2"),
                     _field(t, "email"), f"{_description(t)} {_field(t, 'vin')}".strip()])
    return rows


def write_joined(seed: int, name: str, make: Callable[[list[list[str]]], list[list[str]]], upper: bool,
                 labels: tuple[str, str] = ("", "")) -> None:
    """A layout joining fields, and its expected payloads: `validate` of its twin with every field apart."""
    from importer.cli import main as cli  # the command line, as a person runs it

    m = Messy(seed)
    twins = [_twin_row(m, i, upper) for i in range(ROWS)]
    rows = make(twins)
    _csv(HERE / f"{name}.csv", rows)
    with tempfile.TemporaryDirectory() as tmp:
        twin, mapping = Path(tmp) / "twin.csv", Path(tmp) / "twin.yaml"
        _csv(twin, [_TWIN, *twins])
        mapping.write_text(TWIN_MAPPING % tuple(f", label: {label}" if label else "" for label in labels),
                           encoding="utf-8")
        payloads = Path(tmp) / "p.jsonl"
        cli(["validate", str(twin), "--mapping", str(mapping), "--out", str(Path(tmp) / "out"),
             "--payloads", str(payloads)])
        (HERE / f"{name}.payloads.jsonl").write_bytes(payloads.read_bytes())


def main() -> None:
    layouts = {"dealertrack_two_vehicles.csv": (dealertrack, ",", "utf-8"),
               "automate_last_first.csv": (automate, ",", "cp1252"),
               "pbs_dotted.csv": (pbs, ";", "utf-8"),
               "quebec_french.csv": (quebec, ",", "utf-8-sig"),
               "silent_headers.csv": (silent, ",", "utf-8"),
               "lying_headers.csv": (lying, ",", "utf-8")}
    for seed, (name, (make, delimiter, encoding)) in enumerate(layouts.items(), 41):
        rows = make(Messy(seed))
        random.Random(seed).shuffle(rows[1:])
        _csv(HERE / name, rows, delimiter, encoding)
        if name == "dealertrack_two_vehicles.csv":
            write_sheet(HERE / "dealertrack_two_vehicles.xlsx", rows, "Customers")
        if name == "quebec_french.csv":
            with zipfile.ZipFile(HERE / "quebec_french.zip", "w", zipfile.ZIP_DEFLATED) as archive:
                archive.write(HERE / name, f"export/{name}")
    write_joined(47, "report_writer_joined", report_writer, upper=True)
    write_joined(48, "one_line_address", one_line, upper=False, labels=("", "cell"))


if __name__ == "__main__":
    main()
