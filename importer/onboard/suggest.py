"""A complete, annotated mapping proposed for a file, from its header and from what its values are.

Each column is looked at twice. Its header is matched against the names DMS exports give their columns
(CDK, Reynolds, Dealertrack, Auto/Mate, PBS, Tekion, DealerVault, and French for Quebec dealers; see
vocabulary.py). Its values are tested: the share that are valid phones, emails, VINs (check digit
included), model years, known makes, states or provinces, ZIP or Canadian postal codes, mileages, Y/N
flags. Where the values clearly are one thing, they win over the header (`Phone` holding emails) or
stand in for it (`F07`); where they say nothing special (names, cities), the header decides, and for a
header that says nothing, the column's place beside the others does (a city before its state).
"""

from __future__ import annotations

import datetime
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from importer.onboard import vocabulary as vocab
from importer.onboard.preview import percent
from importer.prepare import composites
from importer.prepare.full_names import is_business
from importer.prepare.mapping import DEFAULT_PLACEHOLDERS, VEHICLE_COMPOSITES, VEHICLE_FIELDS
from importer.prepare.normalize import (
    normalize_emails,
    normalize_mileage,
    normalize_phones,
    normalize_states,
    normalize_years,
    parse_flags,
    valid_vin_mask,
)
from importer.read.reader import InputFile, read_chunks

#: Rows looked at: enough to see what a column holds, few enough to answer at once on a huge file.
SAMPLE_ROWS = 2_000
#: Share of a column's values that must be of a kind for the values alone to decide.
DECIDES = 0.8
_PROVINCES = ("AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT")
_SINGLE = ("customer_key", "firstName", "middleName", "lastName", "company", "fullName", "isBusiness",
           "address.line1", "address.line2", "address.city", "address.state", "address.zip",
           "address.city_state_zip", "address.one_line")
#: What a vehicle group may hold: its fields, and a description holding several of them.
_VEHICLE_TARGETS = (*VEHICLE_FIELDS, *VEHICLE_COMPOSITES)


@dataclass
class Profile:
    """What one source column is, by its header and by its values."""

    name: str
    position: int
    #: non-empty values, placeholders removed, at most SAMPLE_ROWS
    values: pd.Series
    header: vocab.HeaderMatch | None
    #: share of the non-empty values of each kind (phone, email, vin, ...)
    kinds: dict[str, float] = field(default_factory=dict)

    def kind(self, name: str) -> float:
        return self.kinds.get(name, 0.0)


@dataclass
class Choice:
    """A column placed in the mapping, and why."""

    target: str
    column: Profile
    why: str
    confidence: str
    group: int = 1
    label: str = ""
    #: for a consent or opt-out flag: "block" or "consent", and the contact ("phone"/"email", label or "")
    flag: str = ""
    tie: tuple[str, str] = ("", "")


@dataclass
class Suggestion:
    """The mapping proposed for a file, as a YAML text and as what it decided."""

    text: str
    choices: list[Choice]
    unmapped: list[Profile]

    def samples(self) -> list[str]:
        """Sample values of the unmapped columns, for the terminal only: a mapping file is configuration
        (a ConfigMap, a repository) and never holds a customer's data."""
        return [f"{c.name!r}: {_samples(c)}" for c in self.unmapped]


def _shares(mask: Any, columns: np.ndarray, count: int) -> np.ndarray:
    """For each of `count` columns, the share of its values (rows of `columns`) where `mask` holds."""
    hits = np.asarray(pd.Series(mask).fillna(False).to_numpy(dtype=bool), dtype=float)
    totals = np.bincount(columns, minlength=count)
    found = np.bincount(columns, weights=hits, minlength=count)
    return np.divide(found, totals, out=np.zeros(count), where=totals > 0)


def _all_kinds(values: pd.Series, columns: np.ndarray, count: int) -> list[dict[str, float]]:
    """The kinds of every column at once: `values` are all the columns' values one after the other, and
    `columns` says whose each is. One pass of each test over them all keeps a wide file (thousands of
    columns) as quick as a long one: the cost is in the values, not in a call per column."""
    if values.empty:
        return [{} for _ in range(count)]
    values = values.reset_index(drop=True).astype("str")
    pairs = pd.DataFrame({"column": columns, "value": values}).drop_duplicates()
    distinct, distinct_columns = pairs["value"].reset_index(drop=True), pairs["column"].to_numpy()
    digits = values.str.replace(r"[^0-9]", "", regex=True)
    upper = values.str.upper().str.strip()
    phones, _ = normalize_phones(distinct)
    emails, _ = normalize_emails(distinct)
    states, _ = normalize_states(values)
    years, _ = normalize_years(values)
    miles, _ = normalize_mileage(values)
    flags, _ = parse_flags(values)
    numeric = values.str.fullmatch(r"[0-9][0-9,]*(\.[0-9]+)?")
    codes, uniques = pd.factorize(values)
    business = np.array([is_business(v) for v in uniques], dtype=bool).take(codes)

    def share(mask: Any) -> np.ndarray:
        return _shares(mask, columns, count)

    found = {
        "phone": _shares((phones != "") & (distinct.str.replace(r"[^0-9]", "", regex=True).str.len() >= 10),
                         distinct_columns, count),
        "email": _shares(emails != "", distinct_columns, count),
        "vin": share(pd.Series(valid_vin_mask(upper.str.replace(r"[ -]", "", regex=True)))),
        "state": share(states != ""),
        "province": share(upper.isin(_PROVINCES) | upper.str.lower().isin(vocab.PROVINCE_NAMES)),
        # Two-digit years count ("13" is 2013): they confirm a header that names a year; alone, without
        # such a header, only four-digit years decide (any column of small numbers is two digits).
        "year": share((years != "") & (years.str.slice(0, 2).isin(["19", "20"])) & (years >= "1950")),
        "year4": share((years != "") & values.str.fullmatch("(?:19|20)[0-9]{2}") & (years >= "1950")),
        "zip": share(values.str.fullmatch(r"[0-9]{5}(-[0-9]{4})?|[0-9]{3,4}") & (digits.str.len() >= 3)),
        "postal_ca": share(upper.str.fullmatch(r"[A-Z][0-9][A-Z] ?[0-9][A-Z][0-9]")),
        "postal": share(upper.str.fullmatch(r"[A-Z][0-9][A-Z] ?[0-9][A-Z][0-9]|[0-9]{5}(-[0-9]{4})?|[0-9]{3,4}")),
        "mileage": share((miles != "") & numeric),
        "flag": share(flags.notna()),
        "make": share(upper.isin(vocab.MAKES)),
        "street": share(values.str.match(r"^[0-9]+[A-Za-z]? +[^0-9 ]")),
        "date": share(values.str.fullmatch(r"[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}([ T].*)?")),
        "words": share(values.str.fullmatch(r"[^\W\d_][^\W\d_ .'\-]*(?:[ .'\-]+[^\W\d_]+)*\.?")),
        "comma_name": share(values.str.fullmatch(r"[^\W\d_][^,\d]*, *[^\W\d_][^,\d]*")),
        "two_words": share(values.str.fullmatch(r"[^\W\d_.]+\.? +(?:[^\W\d_]\.? +)?[^\W\d_.][^\d,]*")),
        "first_name": share(upper.str.split(" ").str[0].isin(vocab.FIRST_NAMES)),
        "numeric": share(numeric),
        "business": share(business),
    }
    totals = np.bincount(columns, minlength=count)
    unique = np.divide(np.bincount(distinct_columns, minlength=count), totals, out=np.zeros(count),
                       where=totals > 0)
    kinds: list[dict[str, float]] = []
    for i in range(count):
        if not totals[i]:
            kinds.append({})
            continue
        kinds.append({name: float(shares[i]) for name, shares in found.items()} | {"unique": float(unique[i])})
    return kinds


#: Values tried as columns holding several fields: enough to tell, few enough for usaddress (85 µs a value).
_COMPOSITE_SAMPLE = 500
#: Columns holding several fields: (kind, target, words), the one-line address before the city, state and ZIP
#: (which its tail would pass for).
_COMPOSITE_KINDS = (("one_line", "address.one_line", "one-line addresses (street, city, state, ZIP)"),
                    ("city_state_zip", "address.city_state_zip", "city, state and ZIP together"),
                    ("description", "description", "vehicle descriptions (year, make, model)"))
#: A cheap look first, so that only likely columns are read as composites: a street number, a ZIP or
#: postal code at the end, a model year among the words.
_COMPOSITE_HINTS = {"one_line": r"^(?:[0-9]+[A-Za-z]?|P\.? ?O\.?) .*(?:[0-9]{5}(?:-[0-9]{4})?|[0-9]{3,4}|"
                                r"[A-Za-z][0-9][A-Za-z] ?[0-9][A-Za-z][0-9])$",
                    "city_state_zip": r"^[^0-9]+ (?:[0-9]{5}(?:-[0-9]{4})?|[0-9]{3,4}|"
                                      r"[A-Za-z][0-9][A-Za-z] ?[0-9][A-Za-z][0-9])$",
                    "description": r"(?:^|.* )(?:19|20)[0-9]{2}(?: .*|$)"}


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def _composite_kinds(values: pd.Series) -> dict[str, float]:
    """Share of the values that read whole as each kind of column holding several fields: every part it
    must give is read, and a state (or province) is one."""
    sample = values.head(_COMPOSITE_SAMPLE)
    shares = {}
    for kind, _, _ in _COMPOSITE_KINDS:
        if sample.empty or sample.str.fullmatch(_COMPOSITE_HINTS[kind]).mean() < 0.5:
            shares[kind] = 0.0
            continue
        found = composites.split(kind, sample)
        whole = ~pd.concat(list(found.unread.values()), axis=1).any(axis=1)
        if "address.state" in found.parts:
            whole &= normalize_states(found.parts["address.state"])[0] != ""
        shares[kind] = _share(whole)
    return shares


def _add_composite_kinds(kinds: list[dict[str, float]], cells: pd.Series, columns: np.ndarray,
                         bounds: np.ndarray) -> None:
    """Each column's `_composite_kinds` added to its kinds. Their cheap hints are tested once over every
    column's first values together, and only a column that a hint fits is split: a file of thousands of
    columns costs one pass, not thousands."""
    zero = {kind: 0.0 for kind, _, _ in _COMPOSITE_KINDS}
    first = (np.arange(len(cells)) - bounds[columns]) < _COMPOSITE_SAMPLE
    sampled = np.bincount(columns[first], minlength=len(kinds))
    candidates: set[int] = set()
    for kind, _, _ in _COMPOSITE_KINDS:
        hinted = first & cells.str.fullmatch(_COMPOSITE_HINTS[kind]).to_numpy(dtype=bool)
        share = np.bincount(columns[hinted], minlength=len(kinds)) / np.maximum(sampled, 1)
        candidates.update(np.flatnonzero(share >= 0.5).tolist())
    for position, column_kinds in enumerate(kinds):
        if position in candidates:
            values = cells.iloc[bounds[position]:bounds[position + 1]].reset_index(drop=True)
            column_kinds.update(_composite_kinds(values))
        else:
            column_kinds.update(zero)


def profile(source: InputFile, sample_rows: int = SAMPLE_ROWS) -> list[Profile]:
    """Every column of the file's header with its header match and the kinds of its first values."""
    chunk = next(read_chunks(source, sample_rows), None)
    placeholders = {p.lower() for p in DEFAULT_PLACEHOLDERS}
    names = list(source.header)
    if chunk is None or chunk.empty:
        cells = pd.Series([], dtype="str")
        columns = np.zeros(0, dtype=np.int64)
    else:
        # Column after column, as one long Series: every test below runs once over all of them.
        block = chunk[names].head(sample_rows)
        cells = pd.Series(block.to_numpy(dtype=object).T.reshape(-1), dtype="str").fillna("").str.strip()
        columns = np.repeat(np.arange(len(names)), len(block))
        kept = ((cells != "") & ~cells.str.lower().isin(placeholders)).to_numpy(dtype=bool)
        cells, columns = cells[kept].reset_index(drop=True), columns[kept]
    kinds = _all_kinds(cells, columns, len(names))
    bounds = np.searchsorted(columns, np.arange(len(names) + 1))
    _add_composite_kinds(kinds, cells, columns, bounds)
    text = cells.to_numpy(dtype=object)
    # Object Series: thousands of them are built, and they are only looked at for the few columns placed.
    return [Profile(name, position, pd.Series(text[bounds[position]:bounds[position + 1]], dtype=object),
                    vocab.match_header(name), kinds[position])
            for position, name in enumerate(names)]


# -- deciding ----------------------------------------------------------------------------------------
def _pct(share: float) -> str:
    return percent(share)


_VALUE_KINDS = (("email", "email", "valid emails"), ("phone", "phone", "valid phones"),
                ("vin", "vin", "VINs with a valid check digit"), ("postal_ca", "address.zip", "Canadian postal codes"))


def _by_values(p: Profile) -> tuple[str, str] | None:
    """A target the values alone decide, and why; None when they say nothing decisive."""
    for kind, target, words in _COMPOSITE_KINDS:
        if p.kind(kind) >= DECIDES:
            return target, f"{_pct(p.kind(kind))} of values are {words}"
    for kind, target, words in _VALUE_KINDS:
        if p.kind(kind) >= DECIDES:
            return target, f"{_pct(p.kind(kind))} of values are {words}"
    if p.kind("flag") >= 0.95:
        return "flag", f"{_pct(p.kind('flag'))} of values are yes/no flags"
    if p.kind("make") >= 0.6:
        return "vehicleMake", f"{_pct(p.kind('make'))} of values are known makes"
    if p.kind("year4") >= 0.95:
        return "vehicleYear", f"{_pct(p.kind('year4'))} of values are model years"
    if p.kind("state") >= 0.95 and p.values.str.len().max() <= 2:
        return "address.state", f"{_pct(p.kind('state'))} of values are state or province codes"
    if p.kind("street") >= DECIDES:
        return "address.line1", f"{_pct(p.kind('street'))} of values look like street addresses"
    return None


#: What the values must look like for a header's claim to stand: a header naming one of these targets is
#: overruled when the values are clearly something else (a "Phone" column full of emails).
_KIND_WORDS = {"phone": "valid phones", "email": "valid emails", "vin": "VINs with a valid check digit",
               "year": "model years", "state": "states or provinces", "mileage": "mileages", "make": "known makes",
               "postal": "ZIP or postal codes"}
_CONFIRMS = {"phone": "phone", "email": "email", "vin": "vin", "vehicleYear": "year", "address.state": "state",
             "estimatedMileage": "mileage", "vehicleMake": "make", "address.zip": "postal"}


# Columns holding several fields: a header naming one stands when its values read as one.
_KIND_WORDS.update({kind: words for kind, _, words in _COMPOSITE_KINDS})
_CONFIRMS.update({target: kind for kind, target, _ in _COMPOSITE_KINDS})


def _decide(p: Profile) -> Choice | None:
    header, values = p.header, _by_values(p)
    if header is not None and header.flag:
        if not header.contact:
            return None  # a flag about no phone or email (postal mail): left for a person to place
        if p.kind("flag") >= 0.9 or p.values.empty:
            kind = "an opt-out" if header.flag == "block" else "a consent"
            return Choice("flag", p, f"header {p.name!r} reads as {kind} flag{'; ' + values[1] if values else ''}",
                          "high" if values else "medium",
                          flag=header.flag, tie=(header.contact, header.label))
        return None
    if header is not None and header.target:
        target = header.target
        if values is not None and values[0] != target and values[0] != "flag" and target not in ("customer_key",):
            confirm = _CONFIRMS.get(target)
            if confirm is None or p.kind(confirm) < 0.5:
                return Choice(values[0], p, f"{values[1]} (the header {p.name!r} says {target}: values win)",
                              "medium", label=header.label)
        confirm = _CONFIRMS.get(target)
        why = f"header {p.name!r}"
        if confirm and not p.values.empty:
            why += f"; {_pct(p.kind(confirm))} of values are {_KIND_WORDS[confirm]}"
        sure = "high" if (confirm is None or p.kind(confirm) >= DECIDES or p.values.empty) else "medium"
        if target == "isBusiness" and p.kind("flag") < 0.9:
            return None
        return Choice(target, p, why, sure, group=header.group, label=header.label)
    if values is not None and values[0] != "flag":
        return Choice(values[0], p, f"{values[1]} (the header says nothing)", "medium")
    return None


def _place_by_neighbours(profiles: list[Profile], taken: dict[int, Choice]) -> list[Choice]:
    """Columns whose header says nothing and whose values are plain text or numbers, placed by their
    neighbours: a city before its state, a zip after it, a model after its make, a mileage after the model,
    first and last name before the address, a customer number first."""
    found: list[Choice] = []
    targets = {c.target for c in taken.values()}

    def free(i: int) -> Profile | None:
        if 0 <= i < len(profiles) and i not in taken and profiles[i].header is None and not profiles[i].values.empty:
            return profiles[i]
        return None

    def place(p: Profile, target: str, why: str, group: int = 1) -> None:
        choice = Choice(target, p, why + " (a guess from the column's place: check it)", "low", group=group)
        taken[p.position] = choice
        targets.add(target)
        found.append(choice)

    for choice in sorted(taken.values(), key=lambda c: c.column.position):
        i = choice.column.position
        if choice.target == "address.state":
            before, after = free(i - 1), free(i + 1)
            if before is not None and before.kind("words") >= DECIDES and "address.city" not in targets:
                place(before, "address.city", "plain words just before the state")
            if after is not None and after.kind("zip") >= DECIDES and "address.zip" not in targets:
                place(after, "address.zip", f"{_pct(after.kind('zip'))} of values are ZIP codes, after the state")
        if choice.target == "vehicleMake":
            after = free(i + 1)
            if after is not None and after.kind("numeric") < 0.5:
                place(after, "vehicleModel", "text just after the make", choice.group)
                nxt = free(i + 2)
                if nxt is not None and nxt.kind("mileage") >= DECIDES and nxt.kind("year") < 0.5:
                    place(nxt, "estimatedMileage", f"{_pct(nxt.kind('mileage'))} of values are mileages, after "
                                                   "the model", choice.group)
    names = [p for p in profiles if free(p.position) is not None and p.kind("words") >= DECIDES
             and p.kind("make") < 0.3]
    if names and not targets & {"firstName", "lastName", "fullName"}:
        full = [p for p in names if p.kind("comma_name") + p.kind("two_words") >= DECIDES]
        if full:
            place(full[0], "fullName", f"{_pct(full[0].kind('comma_name') + full[0].kind('two_words'))} of values "
                                       "are whole names")
        elif len(names) >= 2:
            first, last = names[0], names[1]
            if last.kind("first_name") > first.kind("first_name"):
                first, last = last, first
            if first.kind("first_name") >= 0.3:  # without common first names, two text columns are anything
                place(first, "firstName", f"{_pct(first.kind('first_name'))} of values are common first names")
                place(last, "lastName", "plain words beside the first name")
    key = free(0)
    if key is not None and "customer_key" not in targets and key.kind("unique") >= 0.5 and (
            key.kind("numeric") >= DECIDES or key.values.str.fullmatch(r"[A-Z0-9-]+").mean() >= DECIDES):
        place(key, "customer_key", "an identifier in the first column")
    return found


def _resolve(choices: list[Choice]) -> list[Choice]:
    """One column per single field (the surest, then the first), vehicle fields numbered into groups."""
    rank = {"high": 0, "medium": 1, "low": 2}
    kept: list[Choice] = []
    single: dict[str, Choice] = {}
    for choice in sorted(choices, key=lambda c: (rank[c.confidence], c.column.position)):
        if choice.target in _SINGLE:
            if choice.target in single:
                continue
            single[choice.target] = choice
        kept.append(choice)
    by_field: dict[str, list[Choice]] = defaultdict(list)
    for choice in kept:
        if choice.target in _VEHICLE_TARGETS:
            by_field[choice.target].append(choice)
    for same in by_field.values():
        if len(same) > 1 and len({c.group for c in same}) == 1:
            for group, choice in enumerate(sorted(same, key=lambda c: c.column.position), 1):
                choice.group = group
    return sorted(kept, key=lambda c: c.column.position)


# -- writing -----------------------------------------------------------------------------------------
def _scalar(value: str) -> str:
    """A column name as a YAML scalar, quoted only where YAML would read it otherwise."""
    plain = re.fullmatch(r"[A-Za-z_\u00c0-\u024f][\w .\-/()\u00c0-\u024f]*", value) is not None
    if plain and not value.endswith(" ") and yaml.safe_load(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def _line(key: str, value: str, comment: str, indent: int = 0, width: int = 34) -> str:
    text = " " * indent + f"{key}: {value}"
    return f"{text:<{width}} # {comment}" if comment else text


def _samples(p: Profile, n: int = 3) -> str:
    first = list(dict.fromkeys(p.values.to_numpy(dtype=object).tolist()))[:n]
    shown = [v if len(v) <= 30 else v[:27] + "..." for v in first]
    return ", ".join(shown) if shown else "(empty)"


def _unmapped_reason(p: Profile) -> str:
    if p.values.empty:
        return "empty in the rows looked at"
    if p.header is not None and p.header.flag and not p.header.contact:
        return "a yes/no flag about no phone or email"
    return "neither its header nor its values say which field it is"


def _slug(path: str) -> str:
    name = Path(path).name
    for suffix in (".gz", ".zip", ".csv", ".txt", ".tsv", ".xlsx", ".xls", ".xlsm"):
        name = name.removesuffix(suffix).removesuffix(suffix.upper())
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dealer"


def _contacts(choices: list[Choice], kind: str) -> list[tuple[Choice, Choice | None]]:
    """(contact, its flag) pairs: each flag goes to the contacts its header names."""
    contacts = [c for c in choices if c.target == kind]
    flags = [c for c in choices if c.target == "flag" and c.tie[0] in (kind, "all")]
    paired = []
    for contact in contacts:
        label = contact.label or ""
        fits = [f for f in flags if f.tie[0] == kind and f.tie[1] in ("", label)] or \
               [f for f in flags if f.tie[0] == "all"]
        # The most specific flag wins: one naming this contact's label over one for every phone.
        fits.sort(key=lambda f: (f.tie[1] == "", f.flag != "block"))
        paired.append((contact, fits[0] if fits else None))
    return paired


def _render(path: str, rows: int, choices: list[Choice], unmapped: list[Profile], french: bool,
            canadian: bool) -> str:
    by_target: dict[str, Choice] = {c.target: c for c in choices if c.target in _SINGLE}
    shown = "standard input" if path == "-" else Path(path).name
    lines = [f"# Suggested by `mk-import mappings suggest` from {shown} ({rows:,} rows looked at),",
             f"# {datetime.date.today().isoformat()}. Review it: each line says why and how sure (high: header and",
             "# values agree; medium: one of them; low: a guess from the column's place).",
             f"name: {_scalar(_slug(path))}",
             f"description: {_scalar('Suggested mapping for ' + shown)}"]

    def why(c: Choice) -> str:
        return f"{c.why} · {c.confidence}"

    if "customer_key" in by_target:
        c = by_target["customer_key"]
        lines.append(_line("customer_key", _scalar(c.column.name), why(c)))
    customer = [(t, by_target[t]) for t in ("firstName", "middleName", "lastName", "company", "isBusiness")
                if t in by_target]
    full = by_target.get("fullName")
    if customer or full:
        lines.append("customer:")
        for target, c in customer:
            lines.append(_line(target, _scalar(c.column.name), why(c), 2))
        if full is not None and not {"firstName", "lastName"} <= set(by_target):
            order = "last-first" if full.column.kind("comma_name") < 0.5 and _last_first(full.column) else ""
            businesses = full.column.kind("business") > 0
            extra = (f", order: {order}" if order else "") + (", businesses: true" if businesses else "")
            value = f"{{column: {_scalar(full.column.name)}{extra}}}" if extra else _scalar(full.column.name)
            note = "; some values are businesses, left whole" if businesses else ""
            lines.append(_line("fullName", value, why(full) + note, 2))
    address = [(t, by_target[t]) for t in ("address.line1", "address.line2", "address.city", "address.state",
                                             "address.zip", "address.city_state_zip", "address.one_line")
               if t in by_target]
    if address:
        lines.append("address:")
        lines += [_line(t.removeprefix("address."), _scalar(c.column.name), why(c), 2) for t, c in address]
    for kind, section in (("phone", "phones"), ("email", "emails")):
        pairs = _contacts(choices, kind)
        if not pairs:
            continue
        lines.append(f"{section}:")
        for contact, flag in pairs:
            lines.append(_line("  - column", _scalar(contact.column.name), why(contact)))
            label = contact.label or ("home" if kind == "email" else "")
            if label:
                said = "the header" if contact.label else "no kind in the header: personal"
                lines.append(_line("label", label, said, 4))
            else:
                lines.append("    # label: cell       # the header names no kind: cell, home or work?")
            if flag is not None:
                meaning = ("opt-out: yes withdraws consent, never gives it" if flag.flag == "block"
                           else "consent: yes means may contact")
                lines.append(_line(flag.flag, _scalar(flag.column.name), f"{meaning}; {why(flag)}", 4))
    groups = sorted({c.group for c in choices if c.target in _VEHICLE_TARGETS})
    if groups:
        if len(groups) == 1:
            lines.append("vehicle:")
        else:
            lines.append("vehicles:                         # one group of columns per vehicle of a row")
        for group in groups:
            fields = [c for c in choices if c.target in _VEHICLE_TARGETS and c.group == group]
            fields.sort(key=lambda c: _VEHICLE_TARGETS.index(c.target))
            for i, c in enumerate(fields):
                prefix = ("  - " if i == 0 else "    ") if len(groups) > 1 else "  "
                lines.append(_line(prefix + c.target, _scalar(c.column.name), why(c)))
    country = "CA" if canadian else "US"
    lines += ["defaults:",
              "  address:",
              _line("country", country, "postal codes or provinces are Canadian" if canadian else "", 4),
              "    type: PRIMARY",
              "    addressType: P"]
    if french:
        lines += ["  customer:", _line("preferredLocale", "fr-ca", "the header is in French", 4)]
    # The abbreviations written are the vocabulary's own keys (CHEV, VW...), found among the values.
    makes = sorted({v.upper() for c in choices if c.target == "vehicleMake" for v in c.column.values.unique()
                    if v.upper() in vocab.MAKE_ABBREVIATIONS} | _described_makes(choices))
    if makes:
        lines += ["values:", "  vehicleMake:"]
        lines += [f"    {_scalar(m)}: {_scalar(vocab.MAKE_ABBREVIATIONS[m])}" for m in makes]
    if unmapped:
        # Names and reasons only: values from the file are shown on the terminal, never written here.
        lines.append("# Columns left unmapped (map them above, or list them under ignore:):")
        lines += [f"#   {_scalar(c.name)}: {_unmapped_reason(c)}" for c in unmapped]
    return "\n".join(lines) + "\n"


def _described_makes(choices: list[Choice]) -> set[str]:
    """Abbreviated makes (`CHEVY`) inside vehicle descriptions, for the `values:` map."""
    found = set()
    for c in choices:
        if c.target == "description":
            makes = composites.split("description", c.column.values.drop_duplicates()).parts["vehicleMake"]
            found |= {m.upper() for m in makes.unique() if m.upper() in vocab.MAKE_ABBREVIATIONS}
    return found


def _one_address_column(choices: list[Choice]) -> list[Choice]:
    """A one-line address and a city, state and ZIP column are never both mapped: the surer one stays."""
    both = [c for c in choices if c.target in ("address.one_line", "address.city_state_zip")]
    if len(both) < 2:
        return choices
    rank = {"high": 0, "medium": 1, "low": 2}
    kept = min(both, key=lambda c: (rank[c.confidence], -c.column.kind(_CONFIRMS[c.target]), c.column.position))
    return [c for c in choices if c not in both or c is kept]


def _last_first(p: Profile) -> bool:
    """Whether whole names without commas are written LAST FIRST: the second word is more often a first name."""
    words = p.values.str.upper().str.split(" ")
    firsts = words.str[0].isin(vocab.FIRST_NAMES).mean()
    seconds = words.str[1].isin(vocab.FIRST_NAMES).mean()
    return bool(seconds > firsts)


def suggest(path: str, source: InputFile, sample_rows: int = SAMPLE_ROWS) -> Suggestion:
    """The mapping proposed for an opened file."""
    profiles = profile(source, sample_rows)
    rows = max((len(p.values) for p in profiles), default=0)
    decided = [c for p in profiles if (c := _decide(p)) is not None]
    resolved = _resolve(decided)
    taken = {c.column.position: c for c in resolved}
    resolved = _one_address_column(_resolve([*resolved, *_place_by_neighbours(profiles, taken)]))
    used = {c.column.position for c in resolved}
    # A column without a name and without values is a spreadsheet's leftover, not data to place.
    unmapped = [p for p in profiles if p.position not in used and not (p.name in source.unnamed and p.values.empty)]
    french = sum(1 for p in profiles if p.header is not None and p.header.french) >= 2
    zips = [c.column for c in resolved if c.target == "address.zip"]
    states = [c.column for c in resolved if c.target == "address.state"]
    canadian = any(z.kind("postal_ca") >= 0.5 for z in zips) or any(s.kind("province") >= 0.5 for s in states)
    text = _render(path, rows, resolved, unmapped, french, canadian)
    if not {c.target for c in resolved} & {"lastName", "fullName", "company"}:
        text += ("# No column reads as a name: map customer.lastName, customer.fullName or customer.company\n"
                 "# before using this mapping (a person needs a last name, a business a company).\n")
    return Suggestion(text, resolved, unmapped)
