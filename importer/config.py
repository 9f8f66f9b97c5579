"""Frozen configuration handed from the command line to the pipeline (secrets kept out of repr).

Plain types only: this module imports nothing of the package, so every stage can take its part of it."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_API_URL = "https://api.mykaarma.com"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def authorization(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


@dataclass(frozen=True)
class PoolSettings:
    #: requests per second at most; the rate actually used is found below it
    rate: float = 20.0
    #: requests in flight at most; the number actually used follows rate x latency
    concurrency: int = 64
    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    #: the adaptive rate never drops below this
    min_rate: float = 0.5
    #: stop taking new jobs at this time.monotonic() value
    deadline: float | None = None
    #: seconds an attempt may take in all, however slowly its answer trickles in
    request_timeout: float = 120.0
    #: seconds a request in flight is given to finish once the run is stopping
    stop_grace: float = 5.0
    #: stop when the API has accepted no request (answered only 429s, or nothing) for this many seconds
    patience: float = 900.0


@dataclass(frozen=True)
class ReportFolders:
    """How the report folder is chosen when `--out` is not given, and what `--out` may replace."""

    #: the dated folders go here
    root: Path = Path("mk-import-out")
    #: keep this many dated folders (the newest); None keeps them all
    keep: int | None = None
    #: `--out` may name a folder that already holds reports
    overwrite: bool = False




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
    #: a pilot: only the file's first N customers are sent, the others' rows are not_attempted
    limit: int | None = None
