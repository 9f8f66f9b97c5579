"""Frozen configuration handed from the command line to the pipeline (secrets kept out of repr)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from importer.report.folders import ReportFolders
from importer.send.client import Credentials
from importer.send.pool import PoolSettings

DEFAULT_API_URL = "https://api.mykaarma.com"


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
    #: a file with a header and no data rows is refused unless this is set
    allow_empty: bool = False
    #: refuse a file with fewer data rows than this (a truncated export)
    min_rows: int = 0
    #: the sheet of a workbook to read (None: the first)
    sheet: str | None = None


@dataclass(frozen=True)
class ValidateConfig:
    prepare: PrepareConfig
    #: the report folder; None for ./mk-import-out/<timestamp>/
    out_dir: Path | None = None
    #: where to write the exact JSON bodies a run would send, one per line
    payloads: Path | None = None
    #: invalid rows up to this percentage of the file do not make exit code 1
    max_invalid: float | None = None
    #: a state to forecast from (what a run would create, update, leave unchanged); None for none
    state_path: Path | None = None
    #: the department of that state (None: the one the state file names)
    department: str | None = None
    #: the dated folder and its `latest` link without out_dir; whether out_dir may hold reports already
    folders: ReportFolders = field(default_factory=ReportFolders)


@dataclass(frozen=True)
class RunConfig:
    prepare: PrepareConfig
    department: str
    api_url: str = DEFAULT_API_URL
    #: None with `sandbox`: the embedded sandbox makes its own account
    credentials: Credentials | None = field(default=None, repr=False)
    pool: PoolSettings = field(default_factory=PoolSettings)
    out_dir: Path | None = None
    #: None for the default per department (see state.py)
    state_path: Path | None = None
    #: send every customer, even those unchanged since their last successful save
    full: bool = False
    #: seconds after which no new request starts
    max_duration: float | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    insecure_http: bool = False
    #: start the embedded sandbox in-process and import into it
    sandbox: bool = False
    #: invalid rows up to this percentage of the file do not make exit code 1
    max_invalid: float | None = None
    #: the embedded sandbox keeps its customers in this SQLite file (the state defaults to beside it)
    sandbox_db: Path | None = None
    #: the dated folder and its `latest` link without out_dir; whether out_dir may hold reports already
    folders: ReportFolders = field(default_factory=ReportFolders)
