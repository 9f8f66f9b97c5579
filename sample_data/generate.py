"""Seeded generator of realistic, messy dealer exports for the four built-in layouts.

    python sample_data/generate.py                      # the sample files in sample_data/
    python sample_data/generate.py --layout dealervault --rows 1000000 --out big.csv
    python sample_data/generate.py --layout dealervault --rows 100000 --out big.xlsx   # an Excel export

Messiness as real DMS exports have it: phones in every format and some unusable, emails in capitals with
stray spaces and some broken, placeholders (N/A, NONE, -), states spelled out, ZIPs that lost their
leading zero, Y/N/1/0 flags, VINs with typos, mileage with thousands separators, a trailing space in a
header name, repeat customers, and encodings from UTF-8 with BOM to Windows-1252 and UTF-16. An .xlsx
export (XlsxWriter) holds the same rows with cells typed as a spreadsheet types them: digit-only values
without a leading zero are numbers (so a ZIP stored as a number has lost its zero), the rest is text.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path

TRANSLITERATION = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
                   **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
                   **dict(zip("STUVWXYZ", range(2, 10), strict=True))}
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"

FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
         "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "María",
         "José", "Zoë", "Nguyen", "Wei", "Aisha", "Dmitri", "Fatima", "Liam", "Olivia", "Noah"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "O'Brien", "Nuñez", "McDonald", "Van der Berg", "Kim"]
COMPANIES = ["Acme Fleet Services", "Bayside Plumbing LLC", "City of Springfield", "Hertz Corp", "Rapid Couriers"]
STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Park Blvd", "Washington Ave", "Lake Rd"]
# (city, state code, state name, zip prefix, area codes)
PLACES = [("Boston", "MA", "Massachusetts", "021", ("617", "857")), ("Newark", "NJ", "New Jersey", "071", ("973",)),
          ("Hartford", "CT", "Connecticut", "061", ("860",)),
          ("Los Angeles", "CA", "California", "900", ("310", "213")),
          ("Houston", "TX", "Texas", "770", ("713", "281")), ("Miami", "FL", "Florida", "331", ("305", "786")),
          ("Chicago", "IL", "Illinois", "606", ("312", "773")), ("Seattle", "WA", "Washington", "981", ("206",)),
          ("Denver", "CO", "Colorado", "802", ("303", "720")), ("Phoenix", "AZ", "Arizona", "850", ("602", "480"))]
VEHICLES = [("HONDA", "Accord"), ("TOYOTA", "Camry"), ("CHEVY", "Silverado"), ("Ford", "F-150"), ("VW", "Jetta"),
            ("Nissan", "Altima"), ("Jeep", "Wrangler"), ("Tesla", "Model 3"), ("BMW", "X5"), ("Subaru", "Outback")]
PLACEHOLDERS = ["N/A", "NONE", "NULL", "-", "UNKNOWN"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "comcast.net", "aol.com"]


@dataclass
class Person:
    key: str
    first: str
    last: str
    company: str
    phone_digits: str
    phone2_digits: str
    email: str
    street: str
    place: tuple[str, str, str, str, tuple[str, ...]]
    zip_code: str


#: local parts that are not ASCII
ACCENTED = ["zoë", "josé", "anaïs", "björn", "françois", "müller", "núñez", "søren", "łukasz", "chloé"]


class Messy:
    """Draws values the way dealer systems export them."""

    def __init__(self, seed: int, to_fix: float = 0.0) -> None:
        self.r = random.Random(seed)
        #: the share of rows given an email whose local part is not ASCII (which the API refuses), on top of
        #: the ~1.4% of rows that the other mess makes rows to fix
        self.to_fix = to_fix

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def vin(self) -> str:
        r = self.r
        body = [r.choice("12345JW")] + [r.choice(VIN_CHARS) for _ in range(16)]
        if body[0] in "12345":
            total = sum(TRANSLITERATION[c] * w for c, w in zip(body, WEIGHTS, strict=True)) % 11
            body[8] = "X" if total == 10 else str(total)
        vin = "".join(body)
        if self.chance(0.02):  # a typo: wrong character, a letter O, or one character short
            vin = r.choice([vin[:5] + ("1" if vin[5] != "1" else "2") + vin[6:], vin[:3] + "O" + vin[4:], vin[:-1]])
        return vin.lower() if self.chance(0.03) else vin

    def phone_digits(self, place: tuple[str, str, str, str, tuple[str, ...]]) -> str:
        r = self.r
        return f"{r.choice(place[4])}{r.randint(2, 9)}{r.randint(0, 9)}{r.randint(0, 9)}{r.randint(0, 9999):04d}"

    def phone(self, digits: str) -> str:
        if not digits:
            return ""
        if self.chance(0.02):
            return self.r.choice(["555-1234", "000-000-0000", "12345", "(310) 555-12"])
        if self.chance(0.02):
            return self.r.choice(PLACEHOLDERS)
        a, b, c = digits[:3], digits[3:6], digits[6:]
        return self.r.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", digits, f"1-{a}-{b}-{c}", f"+1 {a} {b} {c}",
                              f"{a}.{b}.{c}"])

    def email(self, email: str) -> str:
        if self.to_fix and self.chance(self.to_fix):
            # Typed from the customer's accented name: no ASCII form, so a row to fix.
            return f"{self.r.choice(ACCENTED)}.{email or 'client@example.com'}"
        if not email:
            return ""
        if self.chance(0.02):
            return self.r.choice([email.split("@")[0] + "@", email.replace("@", " at "), email + ".", "none"])
        if self.chance(0.1):
            email = email.upper()
        return f" {email} " if self.chance(0.05) else email

    def state(self, place: tuple[str, str, str, str, tuple[str, ...]]) -> str:
        roll = self.r.random()
        return place[2] if roll < 0.05 else place[1].lower() if roll < 0.1 else place[1]

    def zip_code(self, code: str) -> str:
        if code.startswith("0") and self.chance(0.3):
            return code[1:]  # Excel dropped the leading zero
        return f"{code}-{self.r.randint(0, 9999):04d}" if self.chance(0.05) else code

    def flag(self, p_yes: float) -> str:
        yes = self.chance(p_yes)
        return self.r.choice(["Y", "Yes", "1", "TRUE"] if yes else ["N", "No", "0", "", ""])

    def mileage(self) -> str:
        miles = self.r.randint(0, 180_000)
        return self.r.choice([str(miles), f"{miles:,}", "", str(miles)])

    def person(self, number: int) -> Person:
        r = self.r
        place = r.choice(PLACES)
        business = self.chance(0.04)
        first, last = r.choice(FIRST), r.choice(LAST)
        if self.chance(0.015):
            last = r.choice(["", "N/A"])  # a person without a last name: invalid
        if self.chance(0.1):
            first, last = first.upper(), last.upper()
        # People with accented names mostly have plain ASCII addresses.
        ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
        email = f"{ascii_name}{r.randint(1, 999)}@{r.choice(DOMAINS)}".lower().replace(" ", "").replace("'", "")
        if not last or last == "N/A":
            email = f"{first.lower()}{r.randint(1, 9999)}@{r.choice(DOMAINS)}"
        return Person(
            key=f"{number:07d}" if self.chance(0.5) else str(100000 + number),
            first="" if business else first, last="" if business else last,
            company=r.choice(COMPANIES) if business else "",
            phone_digits="" if self.chance(0.1) else self.phone_digits(place),
            phone2_digits=self.phone_digits(place) if self.chance(0.4) else "",
            email="" if self.chance(0.15) else email,
            street=f"{r.randint(1, 9999)} {r.choice(STREETS)}",
            place=place, zip_code=f"{place[3]}{r.randint(0, 99):02d}",
        )


def _people(messy: Messy, rows: int, repeat_ratio: float) -> list[Person]:
    """One person per row; a share of rows repeat an earlier customer (another deal, RO or vehicle)."""
    chosen: list[Person] = []
    for i in range(rows):
        if chosen and messy.chance(repeat_ratio):
            chosen.append(chosen[messy.r.randrange(len(chosen))])
        else:
            chosen.append(messy.person(i + 1))
    return chosen


def dealervault(messy: Messy, rows: int, repeat_ratio: float) -> list[list[str]]:
    header = ["Customer Number", "First Name ", "Last Name", "Email 1", "Cell Phone", "Home Phone", "Address Line 1",
              "City", "State", "Zip", "Block Email", "Block Phone", "VIN", "Year", "Make", "Model", "Mileage"]
    out = [header]
    for p in _people(messy, rows, repeat_ratio):
        make, model = messy.r.choice(VEHICLES)
        out.append([p.key, p.first, p.last or p.company, messy.email(p.email), messy.phone(p.phone_digits),
                    messy.phone(p.phone2_digits), p.street, p.place[0], messy.state(p.place),
                    messy.zip_code(p.zip_code), messy.flag(0.1), messy.flag(0.05), messy.vin(),
                    str(messy.r.randint(2008, 2026)), make, model, messy.mileage()])
    return out


def tekion_ro(messy: Messy, rows: int, repeat_ratio: float) -> list[list[str]]:
    header = ["rono", "rocreatedtime", "vin", "year", "make", "model", "mileagein", "firstname", "lastname", "email",
              "mobilephone", "homephone", "postalcode", "streetaddress1"]
    out = [header]
    vins: dict[str, str] = {}
    for i, p in enumerate(_people(messy, rows, max(repeat_ratio, 0.3))):
        make, model = messy.r.choice(VEHICLES)
        vin = vins.setdefault(p.key, messy.vin()) if messy.chance(0.7) else messy.vin()
        out.append([f"RO{500000 + i}", f"2026-{messy.r.randint(1, 10):02d}-{messy.r.randint(1, 28):02d}T10:15:00Z",
                    vin, str(messy.r.randint(2008, 2026)), make, model, messy.mileage(), p.first, p.last or p.company,
                    p.email, messy.phone(p.phone_digits) if p.phone_digits else "", p.phone2_digits,
                    p.zip_code, p.street])
    return out


def reynolds_customers(messy: Messy, rows: int, repeat_ratio: float) -> list[list[str]]:
    header = ["Customer ID", "FirstName", "LastName", "Address1", "Address2", "City", "State", "Zip", "HomePhone",
              "WorkPhone", "MobilePhone", "Email", "Birthday"]
    out = [header]
    for p in _people(messy, rows, repeat_ratio / 3):
        out.append([p.key, p.first, p.last or p.company, p.street, messy.r.choice(["", "", "Apt 4", "Suite 200"]),
                    p.place[0], messy.state(p.place), messy.zip_code(p.zip_code), messy.phone(p.phone2_digits),
                    "", messy.phone(p.phone_digits), messy.email(p.email),
                    f"{messy.r.randint(1, 12)}/{messy.r.randint(1, 28)}/{messy.r.randint(1940, 2004)}"])
    return out


def cdk(messy: Messy, rows: int, repeat_ratio: float) -> list[list[str]]:
    header = ["CustNo", "FirstName", "LastName", "BusinessName", "Address", "City", "State", "ZipOrPostalCode",
              "HomePhone", "CellPhone", "WorkPhone", "Email1", "VIN", "Year", "MakeName", "ModelName",
              "VehicleMileage", "LicensePlate"]
    out = [header]
    for p in _people(messy, rows, repeat_ratio):
        make, model = messy.r.choice(VEHICLES)
        plate = "".join(messy.r.choice(VIN_CHARS) for _ in range(7)) if messy.chance(0.6) else ""
        out.append([p.key, p.first, p.last, p.company, p.street, p.place[0], messy.state(p.place),
                    messy.zip_code(p.zip_code), messy.phone(p.phone2_digits), messy.phone(p.phone_digits),
                    "", messy.email(p.email), messy.vin(), str(messy.r.randint(2008, 2026)), make, model,
                    messy.mileage(), plate])
    return out


# layout → (generator, file name, encoding, delimiter). Layouts without a company column carry a business
# name in the last-name column, as DMS exports do.
LAYOUTS = {
    "dealervault": (dealervault, "dealervault_sales.csv", "utf-8-sig", ","),
    "tekion-ro": (tekion_ro, "tekion_ro_history.csv", "utf-8", ","),
    "reynolds-customers": (reynolds_customers, "reynolds_customers.txt", "utf-16", "\t"),
    "cdk": (cdk, "cdk_customers.csv", "cp1252", ","),
}


#: layout → the name of its .xlsx sample file (the same rows as its CSV sample)
XLSX_SAMPLES = {"dealervault": "dealervault_sales.xlsx"}


def write_xlsx(layout: str, path: Path, rows: int, seed: int = 7, repeat_ratio: float = 0.15,
               to_fix: float = 0.0) -> Path:
    """The layout's rows as an Excel workbook, one sheet, cells typed as a spreadsheet types them."""
    generator = LAYOUTS[layout][0]
    return write_sheet(path, generator(Messy(seed, to_fix), rows, repeat_ratio), "Export")


def write_sheet(path: Path, table: list[list[str]], sheet_name: str) -> Path:
    """Rows of text as a one-sheet workbook, the way a person keying it would have it: plain numbers (years,
    mileages, numbers without a leading zero) as numbers, everything else as text."""
    import xlsxwriter  # only the .xlsx exports need it (in the test and bench extras)

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    book.set_properties({"created": datetime.datetime(2026, 1, 1)})  # the same bytes on every run
    sheet = book.add_worksheet(sheet_name)
    for r, row in enumerate(table):
        for c, value in enumerate(row):
            if r and value.isdigit() and not value.startswith("0") and len(value) < 10:
                sheet.write_number(r, c, int(value))
            else:
                sheet.write_string(r, c, value)
    book.close()
    return path


def write(layout: str, path: Path, rows: int, seed: int = 7, repeat_ratio: float = 0.15,
          to_fix: float = 0.0) -> Path:
    """`to_fix`: the share of rows given a value to fix on top of the usual mess (see Messy.to_fix)."""
    if path.suffix.lower() == ".xlsx":
        return write_xlsx(layout, path, rows, seed, repeat_ratio, to_fix)
    generator, _, encoding, delimiter = LAYOUTS[layout]
    table = generator(Messy(seed, to_fix), rows, repeat_ratio)
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(table)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help="one layout (default: all, as sample files)")
    parser.add_argument("--rows", type=int, default=250)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat-ratio", type=float, default=0.15, help="share of rows repeating a customer")
    parser.add_argument("--to-fix", type=float, default=0.0,
                        help="share of rows given an email to fix (not ASCII), on top of the usual ~1.4%%")
    parser.add_argument("--out", type=Path, help="output file (with --layout); a .xlsx name writes a workbook")
    args = parser.parse_args()
    for layout in [args.layout] if args.layout else sorted(LAYOUTS):
        path = args.out if args.out and args.layout else Path(__file__).parent / LAYOUTS[layout][1]
        write(layout, path, args.rows, args.seed, args.repeat_ratio, args.to_fix)
        print(f"{layout}: {path}")
        if layout in XLSX_SAMPLES and not args.out:
            book = write_xlsx(layout, path.with_name(XLSX_SAMPLES[layout]), args.rows, args.seed, args.repeat_ratio)
            print(f"{layout}: {book}")


if __name__ == "__main__":
    main()
