"""The dealers file: one entry per dealer department, with defaults, checked whole before anything runs.

```yaml
defaults: {mapping: cdk, schedule: "0 1 * * *", stagger: 5, night_ends: "06:00", max_duration: 3h, ...}
cron: {user: mkimport, command: /opt/mk-import/bin/mk-import, log_dir: ..., metrics_dir: ...}
kubernetes: {image: ..., namespace: ..., exports: {claim: ..., mount: ...}, pushgateway: ...}
dealers:
  - {name: example-motors, department: 0f6c..., input: /srv/exports/example-motors/*.csv, ...}
    # optional, per entry or in defaults: proxy: http://proxy.example:3128 (no credentials), ca_bundle: ca.pem
```

Relative paths are relative to the dealers file. `{name}` in a string of `defaults` becomes the entry's name.
Every mistake is collected and reported with the entry and key it concerns, so one pass fixes them all.
"""

from __future__ import annotations

import glob
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from importer.config import DEFAULT_MAX_CHANGED, DEPARTMENT_RULE, is_department
from importer.errors import ConfigError, InputError
from importer.prepare.mapping import builtin_names, read_yaml
from importer.send.network import parse_proxy

#: Keys an entry may carry; all but name and department may also be defaults.
ENTRY_KEYS = ("name", "department", "input", "mapping", "credentials", "schedule", "rate", "max_duration",
              "max_age", "full", "keep", "api_url", "proxy", "ca_bundle", "max_changed",
              *("max_invalid", "min_rows", "allow_empty", "patience", "request_timeout", "concurrency"))
#: The run options of an entry that `run` takes as they are (the command line's own, given there, win).
RUN_OPTIONS = ("max_invalid", "min_rows", "allow_empty", "patience", "request_timeout", "concurrency")
#: Keys only the defaults may carry: they concern every dealer together.
SHARED_KEYS = ("stagger", "night_ends", "state_dir", "reports")
CRON_KEYS = ("user", "command", "dealers_file", "log_dir", "metrics_dir", "lock_dir", "time_zone")
KUBERNETES_KEYS = ("namespace", "namespace_exists", "image", "time_zone", "pushgateway", "exports", "state_storage",
                   "reports_storage", "reports_access_mode", "storage_class", "resources", "run_as_user")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
#: Line breaks and other control characters (C0, DEL, C1, and Unicode's line and paragraph separators): no
#: name, path or value of a dealers file holds one, and in a cron line a line break starts a job of its own.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_character(text: str) -> str | None:
    """The first control character of `text` as U+XXXX, or None."""
    found = CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


@dataclass(frozen=True)
class Dealer:
    """One dealer department, with every default applied and every path absolute."""

    name: str
    department: str
    #: a path or a glob: the newest matching file is imported
    input: str
    #: a built-in mapping name, or an absolute path to a mapping file
    mapping: str
    #: the env file holding MK_USERNAME and MK_PASSWORD on a host
    env_file: Path | None
    #: the Kubernetes Secret holding `username` and `password`
    secret: str | None
    #: five cron fields, staggered when the entry gives none
    schedule: str
    rate: float
    #: seconds; cut so that the run ends inside the night
    max_duration: float
    #: seconds: the newest input must be younger; None to accept any age
    max_age: float | None
    full: bool
    #: dated report folders to keep
    keep: int | None
    api_url: str | None
    #: the proxy's URL, without credentials (those are MK_PROXY_USERNAME and MK_PROXY_PASSWORD)
    proxy: str | None
    #: CA certificates trusted besides the system's
    ca_bundle: Path | None
    state: Path
    #: this dealer's dated report folders go here
    reports: Path
    #: percent of invalid rows that do not make exit code 1 (None: any invalid row does)
    max_invalid: float | None = None
    #: fewer data rows than this: a truncated export, refused
    min_rows: int | None = None
    allow_empty: bool = False
    #: seconds without an accepted request before the run stops
    patience: float | None = None
    #: seconds one request may take in all
    request_timeout: float | None = None
    #: requests in flight at most
    concurrency: int | None = None
    #: --max-changed: percent of known customers a run may change in name, phones, emails or addresses
    max_changed: float = DEFAULT_MAX_CHANGED

    def run_options(self) -> dict[str, Any]:
        """The run options this entry gives (RUN_OPTIONS), by the name `run`'s arguments have."""
        given = {key: getattr(self, key) for key in RUN_OPTIONS}
        return {key: value for key, value in given.items() if value is not None and value is not False}

    def newest_input(self, now: Callable[[], float] = time.time) -> Path:
        """The newest file matching `input`, refused if there is none or if it is older than max_age."""
        matches = [Path(p) for p in glob.glob(self.input)] if glob.has_magic(self.input) else [Path(self.input)]
        files = [p for p in matches if p.is_file()]
        if not files:
            raise InputError(f"dealer {self.name}: input: no file matches {self.input}")
        newest = max(files, key=lambda p: (p.stat().st_mtime, p.name))
        age = now() - newest.stat().st_mtime
        if self.max_age is not None and age > self.max_age:
            raise InputError(f"dealer {self.name}: input: the newest file, {newest}, is {age / 3600:.1f} h old, "
                             f"older than max_age ({self.max_age / 3600:g} h): the export did not arrive")
        return newest


@dataclass(frozen=True)
class DealersFile:
    path: Path
    dealers: tuple[Dealer, ...]
    cron: dict[str, Any] = field(default_factory=dict)
    kubernetes: dict[str, Any] = field(default_factory=dict)

    def dealer(self, name: str) -> Dealer:
        for dealer in self.dealers:
            if dealer.name == name:
                return dealer
        known = ", ".join(d.name for d in self.dealers)
        raise ConfigError(f"{self.path}: no dealer named {name!r} (the file has: {known})")


class _Problems:
    """Collects every mistake with where it is, instead of stopping at the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, where: str, key: str, text: str) -> None:
        line = f"{self.path}: {where}: {key}: {text}"
        if line not in self.lines:
            self.lines.append(line)

    def raise_any(self) -> None:
        if self.lines:
            raise ConfigError("\n".join(self.lines))


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a text like 90m, 3h, 1.5d."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 3h, 90m or 3600")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip().lower())
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 3h, 90m or 3600")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return seconds


def _clock(value: Any) -> int:
    """Minutes after midnight from HH:MM."""
    match = re.match(r"^(\d{1,2}):(\d{2})$", str(value).strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{value!r} is not a time of day such as 06:00")
    return int(match.group(1)) * 60 + int(match.group(2))


_CRON_RANGES = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, {m: i + 1 for i, m in enumerate(_MONTHS)},
                                          {d: i for i, d in enumerate(_WEEKDAYS)})


def _cron_value(text: str, index: int) -> int:
    what, low, high = _CRON_RANGES[index]
    number = _CRON_NAMES[index].get(text.lower()) if not text.isdigit() else int(text)
    if number is None or not low <= number <= high:
        raise ValueError(f"{text!r} is not a {what} ({low}-{high})")
    return number


def _check_schedule(value: Any) -> str:
    """Five cron fields, each a list of *, N, N-M, with an optional /step, in its range."""
    fields = str(value).split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"{value!r} is not five cron fields (minute hour day month weekday)")
    for index, text in enumerate(fields):
        for part in text.split(","):
            span, _, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(f"{value!r}: {part!r} has a bad step")
            if span != "*":
                ends = [_cron_value(end, index) for end in span.split("-", 1)]
                if ends != sorted(ends):
                    raise ValueError(f"{value!r}: {part!r} runs backwards")
    return " ".join(fields)


def _start_minute(schedule: str) -> int | None:
    """Minutes after midnight a schedule starts at, when its minute and hour are plain numbers."""
    minute, hour = schedule.split()[:2]
    if minute.isdigit() and hour.isdigit() and int(minute) < 60 and int(hour) < 24:
        return int(hour) * 60 + int(minute)
    return None


def _staggered(schedule: str, offset: int) -> str:
    start = _start_minute(schedule)
    if start is None or offset == 0:
        return schedule
    start = (start + offset) % (24 * 60)
    rest = schedule.split()[2:]
    return " ".join([str(start % 60), str(start // 60), *rest])


def _fill_name(value: Any, name: str) -> Any:
    if isinstance(value, str):
        return value.replace("{name}", name)
    if isinstance(value, dict):
        return {k: _fill_name(v, name) for k, v in value.items()}
    return value


def _path(base: Path, value: Any) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


class _Entry:
    """Reads one entry's keys (defaults applied), recording every mistake under its entry and key."""

    def __init__(self, values: dict[str, Any], where: str, problems: _Problems, base: Path,
                 own: set[str] | None = None, templated: set[str] | None = None) -> None:
        self.values, self.where, self.problems, self.base = values, where, problems, base
        #: keys the entry itself gives; a mistake in another one is the defaults'
        self.own = set(values) if own is None else own
        #: default keys holding {name}: their mistakes differ by entry, so they name it
        self.templated = templated or set()

    def get(self, key: str, convert: Callable[[Any], Any], default: Any = None, *, required: bool = False) -> Any:
        if key not in self.values or self.values[key] is None:
            if required:
                self.problems.add(self.where, key, "missing")
            return default
        try:
            return convert(self.values[key])
        except (ValueError, TypeError) as exc:
            where = (self.where if key in self.own else
                     f"defaults (for {self.where})" if key in self.templated else "defaults")
            self.problems.add(where, key, str(exc))
            return default


def _text(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise ValueError(f"expected a text, got {value!r}")
    return str(value).strip()


def _department(value: Any) -> str:
    """The department as `run` checks it (config.is_department): one path segment of every request."""
    text = _text(value)
    if not is_department(text):
        raise ValueError(f"{text[:40]!r}: {DEPARTMENT_RULE}")
    return text


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a positive number, got {value!r}")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


def _percentage(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ValueError(f"expected a percentage between 0 and 100, got {value!r}")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _section(raw: dict[str, Any], key: str, allowed: tuple[str, ...], problems: _Problems) -> dict[str, Any]:
    section = raw.get(key) or {}
    if not isinstance(section, dict):
        problems.add(key, key, "expected a mapping of keys to values")
        return {}
    for unknown in sorted(set(section) - set(allowed)):
        problems.add(key, str(unknown), f"unknown key (known: {', '.join(allowed)})")
    return section


def load_dealers(path: Path) -> DealersFile:
    """Read and check a dealers file; ConfigError listing every mistake with its entry and key."""
    if (char := control_character(str(path))) is not None:
        # Its path is written into every cron line and into the schedules' comments.
        raise ConfigError(f"{str(path)!r}: the dealers file's name holds a line break or control character "
                          f"({char}); rename it")
    # The mapping files' bounds: a few hundred bytes of nested aliases would otherwise expand to gigabytes.
    raw = read_yaml(path, "dealers file")
    problems = _Problems(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected keys defaults, cron, kubernetes and dealers at the top")
    _refuse_control_characters(raw, "", problems)
    for unknown in sorted(set(raw) - {"defaults", "cron", "kubernetes", "dealers"}):
        problems.add("top", str(unknown), "unknown key (known: defaults, cron, kubernetes, dealers)")
    defaults = _section(raw, "defaults", tuple(k for k in ENTRY_KEYS + SHARED_KEYS
                                               if k not in ("name", "department")), problems)
    cron = _section(raw, "cron", CRON_KEYS, problems)
    for key in ("log_dir", "metrics_dir", "lock_dir"):
        if cron.get(key) is not None:
            cron[key] = str(_path(path.resolve().parent, cron[key]))
    kubernetes = _section(raw, "kubernetes", KUBERNETES_KEYS, problems)
    entries = raw.get("dealers")
    if not isinstance(entries, list) or not entries:
        problems.add("top", "dealers", "expected a list of dealer entries")
        entries = []
    base = path.resolve().parent
    shared = _Entry(defaults, "defaults", problems, base)
    stagger = shared.get("stagger", _count_or_zero, 5)
    night_ends = shared.get("night_ends", _clock)
    state_dir = shared.get("state_dir", lambda v: _path(base, v), Path("/var/lib/mk-import/state"))
    reports = shared.get("reports", lambda v: _path(base, v), Path("/var/lib/mk-import/reports"))
    default_schedule = shared.get("schedule", _check_schedule, "0 1 * * *")
    templated = {k for k, v in defaults.items() if "{name}" in str(v)}
    dealers: list[Dealer] = []
    names: set[str] = set()
    unscheduled = 0
    for index, entry in enumerate(entries):
        where = f"dealers[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, "-", "expected a mapping of keys to values")
            continue
        if isinstance(entry.get("name"), str):
            where = f"dealers[{index}] ({entry['name']})"
        for unknown in sorted(set(entry) - set(ENTRY_KEYS)):
            problems.add(where, str(unknown), f"unknown key (known: {', '.join(ENTRY_KEYS)})")
        name = _Entry(entry, where, problems, base).get("name", _text, "", required=True)
        if name and (not _NAME.match(name) or len(name) > 40):
            problems.add(where, "name", "use at most 40 lower-case letters, digits and dashes (it names files "
                                        "and Kubernetes objects)")
        if name in names:
            problems.add(where, "name", "another entry has this name")
        names.add(name)
        # The default schedule is not copied: an entry without its own gets it staggered, below.
        values = {k: _fill_name(v, name) for k, v in defaults.items()
                  if k in ENTRY_KEYS and k != "schedule"} | entry
        dealer = _dealer(_Entry(values, where, problems, base, set(entry), templated), name, state_dir, reports)
        if dealer is None:
            continue
        if not dealer.schedule:
            dealer = replace(dealer, schedule=_staggered(default_schedule, unscheduled * stagger))
            unscheduled += 1
        dealers.append(_inside_night(dealer, night_ends, where, problems))
    problems.raise_any()
    return DealersFile(path, tuple(dealers), cron, kubernetes)


def _refuse_control_characters(value: Any, where: str, problems: _Problems) -> None:
    """Every text of the file, keys included, is free of line breaks and control characters: they would
    end a line of the generated crontab (and start a job of the attacker's) or of its comments."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        here = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)
        for text in (key, item):
            if isinstance(text, str) and (char := control_character(text)) is not None:
                section, _, rest = here.partition(".")
                problems.add(section, rest or section, f"holds a line break or control character ({char}); "
                                                      "a cron line would end there")
        _refuse_control_characters(item, here, problems)


def _count_or_zero(value: Any) -> int:
    return 0 if value == 0 else _count(value)


def _mapping(base: Path) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = _text(value)
        if text in builtin_names():
            return text
        path = _path(base, text)
        if not path.is_file():
            raise ValueError(f"{text!r} is neither a built-in mapping ({', '.join(builtin_names())}) nor a file")
        return str(path)
    return convert


def _credentials(base: Path) -> Callable[[Any], tuple[Path | None, str | None]]:
    def convert(value: Any) -> tuple[Path | None, str | None]:
        if not isinstance(value, dict) or not value or set(value) - {"env_file", "secret"}:
            raise ValueError("expected env_file: PATH (on a host) and/or secret: NAME (a Kubernetes Secret)")
        env_file = _path(base, _text(value["env_file"])) if value.get("env_file") is not None else None
        secret = _text(value["secret"]) if value.get("secret") is not None else None
        if secret is not None and (not _NAME.match(secret) or len(secret) > 253):
            raise ValueError(f"secret {secret!r} is not a Kubernetes object name")
        return env_file, secret
    return convert


def _proxy(value: Any) -> str:
    text = _text(value)
    try:
        proxy = parse_proxy(text, "proxy")
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix("proxy: ")) from None
    if proxy.credentials is not None:
        # The value goes into crontabs and manifests in clear, and is not repeated here.
        raise ValueError("the URL carries a user name or password (not repeated here): give the bare URL, and the "
                         "credentials as MK_PROXY_USERNAME and MK_PROXY_PASSWORD in the env file or the Secret "
                         "(keys proxy_username, proxy_password)")
    return proxy.url


def _ca_bundle(base: Path) -> Callable[[Any], Path]:
    def convert(value: Any) -> Path:
        path = _path(base, _text(value))
        if not path.is_file():
            raise ValueError(f"{path}: no such file (a PEM file of CA certificates)")
        return path
    return convert


def _dealer(entry: _Entry, name: str, state_dir: Path, reports: Path) -> Dealer | None:
    base = entry.base
    department = entry.get("department", _department, "", required=True)
    input_ = entry.get("input", lambda v: str(_path(base, _text(v))), "", required=True)
    mapping = entry.get("mapping", _mapping(base), "", required=True)
    env_file, secret = entry.get("credentials", _credentials(base), (None, None), required=True)
    schedule = entry.get("schedule", _check_schedule, "")
    rate = entry.get("rate", _positive_number, 20.0)
    max_duration = entry.get("max_duration", parse_duration, 3 * 3600.0)
    max_age = entry.get("max_age", parse_duration)
    full = entry.get("full", _flag, False)
    keep = entry.get("keep", _count)
    api_url = entry.get("api_url", _text)
    proxy = entry.get("proxy", _proxy)
    ca_bundle = entry.get("ca_bundle", _ca_bundle(base))
    options = {"max_invalid": entry.get("max_invalid", _percentage),
               "min_rows": entry.get("min_rows", _count_or_zero),
               "allow_empty": entry.get("allow_empty", _flag, False),
               "patience": entry.get("patience", parse_duration),
               "request_timeout": entry.get("request_timeout", parse_duration),
               "concurrency": entry.get("concurrency", _count)}
    max_changed = entry.get("max_changed", _percentage, DEFAULT_MAX_CHANGED)
    if not (name and department and input_ and mapping):
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in department)
    return Dealer(name=name, department=department, input=input_, mapping=mapping, env_file=env_file,
                  secret=secret, schedule=schedule, rate=rate, max_duration=max_duration, max_age=max_age,
                  full=full, keep=keep, api_url=api_url, proxy=proxy, ca_bundle=ca_bundle,
                  state=state_dir / f"{safe}.sqlite", reports=reports / name, max_changed=max_changed, **options)


def _inside_night(dealer: Dealer, night_ends: int | None, where: str, problems: _Problems) -> Dealer:
    """Cut max_duration so that a run starting on schedule stops before the night ends."""
    start = _start_minute(dealer.schedule)
    if night_ends is None or start is None:
        return dealer
    left = ((night_ends - start) % (24 * 60)) * 60
    if left < 600:
        problems.add(where, "schedule", f"starts at {start // 60:02d}:{start % 60:02d}, less than 10 minutes "
                                        f"before night_ends")
        return dealer
    return replace(dealer, max_duration=min(dealer.max_duration, float(left)))
