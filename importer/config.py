"""Frozen configuration handed from the command line to the pipeline (secrets kept out of repr).

Plain types only: this module imports nothing of the package, so every stage can take its part of it."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_API_URL = "https://api.mykaarma.com"
#: A department is one path segment of every API URL: letters, digits, dashes, underscores (a UUID, or the
#: sandbox's names), so `..` or `a/b` can never change the endpoint a request goes to. `run` and `deploy`
#: (through the dealers file) check it by this one rule.
DEPARTMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
DEPARTMENT_RULE = "expected a department UUID (letters, digits and dashes)"


def is_department(text: str) -> bool:
    return DEPARTMENT.fullmatch(text) is not None

#: --max-changed: the percent of known customers a guarded category (name, phones, emails, addresses) may change
DEFAULT_MAX_CHANGED = 25.0


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




#: What a workbook or an archive may unpack to, in MB, unless --max-unpacked-mb says otherwise.
DEFAULT_MAX_UNPACKED_MB = 2048
#: How many times its packed size a workbook or archive may unpack to (--max-compression-ratio).
DEFAULT_MAX_RATIO = 100.0


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
    #: bounds of what a workbook or archive may unpack to (see read/containers.Bounds)
    max_unpacked_mb: int = DEFAULT_MAX_UNPACKED_MB
    max_ratio: float = DEFAULT_MAX_RATIO


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
    #: the mass-change guard's limit, as a run would apply it (percent of known customers)
    max_changed: float = DEFAULT_MAX_CHANGED
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
    #: CA certificates trusted besides the system's (a private authority, a proxy that inspects TLS)
    ca_bundle: Path | None = None
    #: the proxy for every request (a dealers file's); None: HTTPS_PROXY and the like decide
    proxy: str | None = field(default=None, repr=False)
    #: the proxy's user and password when its URL carries none (MK_PROXY_USERNAME, MK_PROXY_PASSWORD)
    proxy_credentials: Credentials | None = field(default=None, repr=False)
    #: start the embedded sandbox in-process and import into it
    sandbox: bool = False
    #: invalid rows up to this percentage of the file do not make exit code 1
    max_invalid: float | None = None
    #: the embedded sandbox keeps its customers in this SQLite file (the state defaults to beside it)
    sandbox_db: Path | None = None
    #: refuse to send when a guarded category would change more than this percent of the known customers
    max_changed: float = DEFAULT_MAX_CHANGED
    #: send a mass change all the same
    allow_mass_change: bool = False
    #: the dated folder and its `latest` link without out_dir; whether out_dir may hold reports already
    folders: ReportFolders = field(default_factory=ReportFolders)
    #: a pilot: only the file's first N customers are sent, the others' rows are not_attempted
    limit: int | None = None
