"""Reading the reports back in tests, and prepared requests from a written file."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

from importer.config import PrepareConfig
from importer.prepare.customers import Requests
from importer.prepare.mapping import load_mapping
from importer.prepare.stage import prepare
from importer.read.reader import open_input

DV_HEADER = ["Customer Number", "First Name ", "Last Name", "Email 1", "Cell Phone", "Home Phone", "Address Line 1",
             "City", "State", "Zip", "Block Email", "Block Phone", "VIN", "Year", "Make", "Model", "Mileage"]
VIN_A, VIN_B = "1HGCM82633A004352", "1M8GDM9AXKP042788"


def dv_row(key: str = "", first: str = "Ann", last: str = "Lee", email: str = "", cell: str = "", home: str = "",
           line1: str = "", city: str = "", state: str = "", zip_code: str = "", block_email: str = "",
           block_phone: str = "", vin: str = "", year: str = "", make: str = "", model: str = "",
           mileage: str = "") -> list[str]:
    return [key, first, last, email, cell, home, line1, city, state, zip_code, block_email, block_phone, vin, year,
            make, model, mileage]


def requests_from(path: Path, mapping: str = "dealervault", *, validate_vin: bool = True) -> Requests:
    """The customers' requests of a file, prepared as a run prepares them."""
    spec = load_mapping(mapping)
    with open_input(str(path)) as source:
        prepared = prepare(source, spec, PrepareConfig(input=str(path), mapping=mapping), keep_rows=True)
    return prepared.requests(spec, validate_vin=validate_vin)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_summary(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return result


class FakeClock:
    """A clock for the pool and the rate: `sleep` moves it on at once (the sleeps are kept)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
