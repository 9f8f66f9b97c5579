"""Frozen configuration handed from the command line to the pipeline (secrets kept out of repr)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PrepareConfig:
    """What reading, mapping and validating need; shared by `validate` and `run`."""

    #: a path, or "-" for standard input
    input: str
    #: a built-in mapping name or a mapping file path
    mapping: str
    #: field problems (a bad phone, email, VIN...) make the row invalid instead of being dropped
    strict: bool = False
    validate_vin: bool = True
    chunk_rows: int = 100_000


@dataclass(frozen=True)
class ValidateConfig:
    prepare: PrepareConfig
    #: the report folder; None for ./mk-import-out/<timestamp>/
    out_dir: Path | None = None
    #: where to write the exact JSON bodies a run would send, one per line
    payloads: Path | None = None
