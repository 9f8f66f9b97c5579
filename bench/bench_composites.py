"""`mk-import validate` on the same generated rows with fields in separate columns and joined into one column
("AUSTIN, TX 78701", "12 Oak Ave, Austin, TX 73301", "2018 HONDA Accord 1HGCV..."): wall time and peak RSS.

    python -m bench.bench_composites [--rows 100000]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import pandas as pd

from bench.common import OUT, load, timed
from importer.prepare.composites import _by_usaddress, split
from sample_data.generate import VEHICLES, Messy

NAME_STREET = ["CUST#", "CUSTOMER NAME"]
CONTACTS = ["PHONE 1", "PHONE 2", "EMAIL"]
#: layout → (header, mapping YAML)
LAYOUTS = {
    "separate columns": (
        [*NAME_STREET, "STREET ADDRESS", "CITY", "STATE", "ZIP", *CONTACTS, "YEAR", "MAKE", "MODEL", "VIN"],
        "address: {line1: STREET ADDRESS, city: CITY, state: STATE, zip: ZIP}\n"
        "vehicle: {vin: VIN, vehicleYear: YEAR, vehicleMake: MAKE, vehicleModel: MODEL}\n"),
    "city_state_zip + description": (
        [*NAME_STREET, "STREET ADDRESS", "CITY STATE ZIP", *CONTACTS, "VEHICLE"],
        "address: {line1: STREET ADDRESS, city_state_zip: CITY STATE ZIP}\nvehicle: {description: VEHICLE}\n"),
    "one_line (commas) + description": (
        [*NAME_STREET, "ADDRESS", *CONTACTS, "VEHICLE"],
        "address: {one_line: ADDRESS}\nvehicle: {description: VEHICLE}\n"),
    "one_line (no commas: usaddress) + description": (
        [*NAME_STREET, "ADDRESS", *CONTACTS, "VEHICLE"],
        "address: {one_line: ADDRESS}\nvehicle: {description: VEHICLE}\n"),
}
COMMON = ("customer_key: CUST#\ncustomer: {fullName: {column: CUSTOMER NAME, businesses: true}}\n"
          "phones: [{column: PHONE 1, label: home}, {column: PHONE 2, label: cell}]\n"
          "emails: [{column: EMAIL, label: home}]\n")


def write_files(rows: int, seed: int = 11) -> dict[str, tuple[Path, Path]]:
    """The same people and vehicles in each layout: (file, mapping) per layout, generated once and reused."""
    OUT.mkdir(parents=True, exist_ok=True)
    paths = {layout: (OUT / f"composites-{i}-{rows}.csv", OUT / f"composites-{i}.yaml")
             for i, layout in enumerate(LAYOUTS)}
    if all(p.exists() for p, _ in paths.values()):
        return paths
    m = Messy(seed)
    streams = {layout: path.open("w", newline="", encoding="utf-8") for layout, (path, _) in paths.items()}
    writers = {layout: csv.writer(stream) for layout, stream in streams.items()}
    for layout, (_, mapping) in paths.items():
        writers[layout].writerow(LAYOUTS[layout][0])
        mapping.write_text(COMMON + LAYOUTS[layout][1], encoding="utf-8")
    for i in range(rows):
        p = m.person(i + 1)
        name = p.company or f"{p.last}, {p.first}"
        city, state, zip_code = p.place[0], p.place[1], p.zip_code
        make, model = m.r.choice(VEHICLES)
        year, vin = str(m.r.randint(2006, 2026)), m.vin()
        contacts = [m.phone(p.phone_digits), m.phone(p.phone2_digits), m.email(p.email)]
        head = [p.key, name]
        description = f"{year} {make} {model} {vin}"
        writers["separate columns"].writerow([*head, p.street, city, state, zip_code, *contacts, year, make, model,
                                              vin])
        writers["city_state_zip + description"].writerow([*head, p.street, f"{city}, {state} {zip_code}", *contacts,
                                                          description])
        writers["one_line (commas) + description"].writerow(
            [*head, f"{p.street}, {city}, {state} {zip_code}", *contacts, description])
        writers["one_line (no commas: usaddress) + description"].writerow(
            [*head, f"{p.street} {city} {state} {zip_code}".upper(), *contacts, description])
    for stream in streams.values():
        stream.close()
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print(f"load before: {load()}")
    print("| layout | wall s | CPU s | peak RSS MB |")
    print("|---|---:|---:|---:|")
    for layout, (source, mapping) in write_files(args.rows).items():
        out = OUT / "composites-out"
        shutil.rmtree(out, ignore_errors=True)
        timing = timed([sys.executable, "-m", "importer", "validate", str(source), "--mapping", str(mapping),
                        "--overwrite", "--out", str(out)])
        if timing.returncode not in (0, 1):
            raise SystemExit(timing.stderr)
        print(f"| {layout} | {timing.wall_s:.2f} | {timing.cpu_s:.2f} | {timing.max_rss_mb:.0f} |")
    print(f"load after: {load()}")
    agreement(write_files(args.rows)["one_line (no commas: usaddress) + description"][0])


def agreement(path: Path, first: int = 3_000) -> None:
    """How often the split of one-line addresses without commas (usaddress, then the cities it taught) agrees
    with usaddress's own reading of each address."""
    with path.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    values = pd.Series([r[rows[0].index("ADDRESS")] for r in rows[1:]], dtype="str")
    parts = split("one_line", values).parts
    same = sum({k: parts[k].iloc[i] for k in own} == own
               for i in range(min(first, len(values))) if (own := _by_usaddress(values.iloc[i], street=True)))
    print(f"one-line addresses without commas: the split agrees with usaddress on {same:,} of "
          f"{min(first, len(values)):,}")


if __name__ == "__main__":
    main()
