"""Mapping files: which source column feeds which API field; and a raw chunk → canonical columns.

A mapping is YAML (see mappings/*.yaml and docs/mappings.md). Canonical column names are the API's own field
names (`firstName`, `vin`), with `address.` before address fields and numbered slots for phones and emails
(`phone1`, `phone1.block` or `phone1.consent`, `email1`, ...), and `vehicle2.` before the fields of the second
and later vehicles of a row (`vehicles:`). A column holding several fields (`address: {city_state_zip: ...}`,
`vehicle: {description: ...}`) is split into canonical columns here, by composites.py. Everything downstream
speaks canonical columns only.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from importer.errors import ConfigError
from importer.prepare import composites
from importer.prepare.full_names import NAME_PARTS, split_names
from importer.read.reader import header_key

CUSTOMER_FIELDS = ("firstName", "middleName", "lastName", "company", "isBusiness", "preferredLocale")
ADDRESS_FIELDS = ("line1", "line2", "city", "state", "zip", "country")
VEHICLE_FIELDS = ("vin", "vehicleYear", "vehicleMake", "vehicleModel", "vehicleTrim", "estimatedMileage",
                  "licensePlate", "color", "vehicleKey", "vehicleEngine")
#: Keys of `address:` and of a vehicle that name a column holding several fields (composites.py splits it).
ADDRESS_COMPOSITES = ("city_state_zip", "one_line")
VEHICLE_COMPOSITES = ("description",)
#: Constants a mapping may set for every address; they are not columns.
ADDRESS_DEFAULTS = ("country", "type", "addressType")
DEFAULT_PLACEHOLDERS = ("N/A", "NA", "NONE", "NULL", "-", "UNKNOWN")
#: A mapping file is a few KiB; these bound what a hostile one can cost (a YAML "billion laughs" of nested
#: aliases is a few hundred bytes and expands to gigabytes).
MAX_MAPPING_BYTES = 1 << 20
MAX_ALIASES = 50
MAX_DEPTH = 20
#: A phone or email carried by more customers than this in one file is the dealer's own or a placeholder.
DEFAULT_SHARED_CONTACT_LIMIT = 3
_TOP_LEVEL = {"name", "description", "customer_key", "customer", "address", "phones", "emails", "vehicle",
              "vehicles", "defaults", "values", "placeholders", "ignore", "shared_contact_limit"}
NAME_ORDERS = ("first-last", "last-first")
_VEHICLE_GROUP = re.compile(r"^vehicle(\d+)\.")


def vehicle_prefix(group: int) -> str:
    """Canonical prefix of a row's vehicle `group` (1-based): none for the first, `vehicle2.` for the second."""
    return "" if group == 1 else f"vehicle{group}."


def base_field(canonical: str) -> str:
    """The API field of a canonical column: `vehicle2.vin` → `vin`; any other column as it is."""
    return _VEHICLE_GROUP.sub("", canonical)


def vehicle_groups(columns: Iterable[str]) -> list[int]:
    """The vehicle groups (1-based) that canonical `columns` hold, in order; always the first."""
    groups = {int(m.group(1)) for c in columns if (m := _VEHICLE_GROUP.match(str(c)))}
    return [1, *sorted(groups - {1})]


@dataclass(frozen=True)
class Contact:
    """One phone or email column: its label and the column that gives or withholds consent."""

    column: str
    label: str
    #: A column whose true value means "do not contact this way" (e.g. `Block Email = Y`).
    block: str | None = None
    #: A column whose true value means "may contact this way".
    consent: str | None = None


@dataclass(frozen=True)
class FullName:
    """A single full-name column, split into first, middle and last name (see names.py for the rules)."""

    column: str
    #: "first-last", or "last-first" for a column written `SMITH JOHN` without commas
    order: str = "first-last"
    #: the column may hold company names: a name that reads as a business is kept whole as the company
    businesses: bool = False


@dataclass(frozen=True)
class Composite:
    """One column holding several fields: `address: {city_state_zip: CITY STATE ZIP}`, `vehicle: {description: ...}`."""

    #: a key of composites.PARTS: "city_state_zip", "one_line" or "description"
    kind: str
    column: str
    #: "" for the address and the first vehicle, `vehicle2.` for the second vehicle, ...
    prefix: str = ""

    @property
    def key(self) -> str:
        """The key as the mapping writes it: `address.one_line`, `vehicle2.description`."""
        return ("address." if self.kind in ADDRESS_COMPOSITES else self.prefix or "vehicle.") + self.kind

    def parts(self) -> dict[str, str]:
        """Each canonical field the column gives → its base field."""
        return {self.prefix + part: part for part in composites.PARTS[self.kind]}


@dataclass(frozen=True)
class MappingSpec:
    name: str
    description: str
    customer_key: str | None
    #: canonical field (e.g. "firstName", "address.zip", "vin") → source column
    fields: dict[str, str]
    phones: tuple[Contact, ...]
    emails: tuple[Contact, ...]
    address_defaults: dict[str, str]
    customer_defaults: dict[str, str]
    #: canonical field → {source value (lower-cased) → replacement}
    values: dict[str, dict[str, str]]
    placeholders: frozenset[str]
    ignore: frozenset[str] = field(default_factory=frozenset)
    #: a phone or email that more customer keys than this carry in one file is dropped for all of them
    shared_contact_limit: int = DEFAULT_SHARED_CONTACT_LIMIT
    full_name: FullName | None = None
    #: columns holding several fields each, split before the fields are normalized
    composites: tuple[Composite, ...] = ()

    def source_columns(self) -> list[str]:
        """Every source column the mapping reads, in a stable order, without repeats."""
        columns = [self.customer_key] if self.customer_key else []
        if self.full_name:
            columns.append(self.full_name.column)
        columns += self.fields.values()
        columns += [c.column for c in self.composites]
        for contact in (*self.phones, *self.emails):
            columns += [c for c in (contact.column, contact.block, contact.consent) if c]
        return list(dict.fromkeys(columns))

    def source_of(self, canonical: str) -> str:
        """The source column a canonical column comes from, for messages a person reads."""
        if canonical == "customerKey" and self.customer_key:
            return self.customer_key
        for kind, contacts in (("phone", self.phones), ("email", self.emails)):
            for i, contact in enumerate(contacts, 1):
                if canonical == f"{kind}{i}":
                    return contact.column
                if canonical in (f"{kind}{i}.block", f"{kind}{i}.consent"):
                    return contact.block or contact.consent or contact.column
        if canonical in NAME_PARTS and canonical not in self.fields and self.full_name:
            return self.full_name.column
        if canonical not in self.fields:
            for composite in self.composites:
                if canonical in composite.parts():
                    return composite.column
        return self.fields.get(canonical, canonical)



def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _str_map(raw: Any, where: str, allowed: Iterable[str], prefix: str = "") -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(where, "expected a mapping of field: column")
    allowed = tuple(allowed)
    out = {}
    for key, value in raw.items():
        if key not in allowed:
            raise _fail(where, f"unknown field {key!r} (known: {', '.join(allowed)})")
        if value is None:
            continue
        if not isinstance(value, str | int):
            raise _fail(where, f"{key}: expected a column name")
        out[prefix + key] = str(value)
    return out


def _contacts(raw: Any, where: str) -> tuple[Contact, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(where, "expected a list of {column, label, block|consent}")
    contacts = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not isinstance(item.get("column"), str):
            raise _fail(f"{where}[{i}]", "needs a column")
        unknown = set(item) - {"column", "label", "block", "consent"}
        if unknown:
            raise _fail(f"{where}[{i}]", f"unknown key {sorted(unknown)[0]!r}")
        if item.get("block") and item.get("consent"):
            raise _fail(f"{where}[{i}]", "give block or consent, not both")
        contacts.append(Contact(item["column"], str(item.get("label") or ""), item.get("block"),
                                item.get("consent")))
    return tuple(contacts)


def _full_name(raw: Any, where: str) -> FullName | None:
    """`fullName: Column`, or `fullName: {column: Column, order: last-first, businesses: true}`."""
    if raw is None:
        return None
    if isinstance(raw, str | int):
        return FullName(str(raw))
    if not isinstance(raw, dict) or not isinstance(raw.get("column"), str | int):
        raise _fail(where, "fullName: expected a column, or {column, order, businesses}")
    unknown = set(raw) - {"column", "order", "businesses"}
    if unknown:
        raise _fail(where, f"fullName: unknown key {sorted(unknown)[0]!r}")
    order = str(raw.get("order") or "first-last")
    if order not in NAME_ORDERS:
        raise _fail(where, f"fullName: order must be one of {', '.join(NAME_ORDERS)}")
    if not isinstance(raw.get("businesses", False), bool):
        raise _fail(where, "fullName: businesses must be true or false")
    return FullName(str(raw["column"]), order, bool(raw.get("businesses", False)))


def _vehicles(raw: Any, single: Any, where: str) -> dict[str, str]:
    """Canonical vehicle fields of `vehicle:` (one group) or `vehicles:` (a list of groups)."""
    if raw is None:
        return _str_map(single, f"{where}: vehicle", VEHICLE_FIELDS + VEHICLE_COMPOSITES)
    if single is not None:
        raise _fail(where, "give vehicle: or vehicles:, not both")
    if not isinstance(raw, list) or not raw:
        raise _fail(where, "vehicles: expected a list of column groups (vin, vehicleYear, vehicleMake, ...)")
    fields: dict[str, str] = {}
    for group, item in enumerate(raw, 1):
        mapped = _str_map(item, f"{where}: vehicles[{group}]", VEHICLE_FIELDS + VEHICLE_COMPOSITES)
        enough = {"vin"}, {"description"}, {"vehicleYear", "vehicleMake", "vehicleModel"}
        if not any(need <= set(mapped) for need in enough):
            raise _fail(f"{where}: vehicles[{group}]", "a vehicle needs a vin, a description, or a vehicleYear, "
                                                        "vehicleMake and vehicleModel")
        fields.update({vehicle_prefix(group) + name: column for name, column in mapped.items()})
    return fields


def _take_composites(fields: dict[str, str], where: str) -> tuple[dict[str, str], tuple[Composite, ...]]:
    """The columns holding several fields, taken out of the one-column fields."""
    found = []
    for key in [k for k in fields if base_field(k).removeprefix("address.") in (*ADDRESS_COMPOSITES,
                                                                                *VEHICLE_COMPOSITES)]:
        kind = base_field(key).removeprefix("address.")
        found.append(Composite(kind, fields.pop(key), key.removesuffix(kind) if kind in VEHICLE_COMPOSITES else ""))
    kinds = [c.kind for c in found]
    if set(ADDRESS_COMPOSITES) <= set(kinds):
        raise _fail(where, "address: give city_state_zip or one_line, not both (one_line holds the city, state "
                           "and ZIP)")
    return fields, tuple(found)


def parse_mapping(raw: Any, where: str) -> MappingSpec:
    """Build a Mapping from parsed YAML; every mistake is a ConfigError naming the file and the key."""
    if not isinstance(raw, dict):
        raise _fail(where, "a mapping file must be a YAML mapping")
    unknown = set(raw) - _TOP_LEVEL
    if unknown:
        raise _fail(where, f"unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_TOP_LEVEL))})")
    customer = raw.get("customer")
    full_name = None
    if isinstance(customer, dict) and "fullName" in customer:
        customer = dict(customer)
        full_name = _full_name(customer.pop("fullName"), f"{where}: customer")
    fields = {
        **_str_map(customer, f"{where}: customer", CUSTOMER_FIELDS),
        **_str_map(raw.get("address"), f"{where}: address", ADDRESS_FIELDS + ADDRESS_COMPOSITES, prefix="address."),
        **_vehicles(raw.get("vehicles"), raw.get("vehicle"), where),
    }
    fields, composite_columns = _take_composites(fields, where)
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - {"address", "customer"}:
        raise _fail(where, "defaults: expected address: and customer: sections")
    values = raw.get("values") or {}
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise _fail(where, "values: expected field: {source value: replacement}")
    known_fields = {*CUSTOMER_FIELDS, *VEHICLE_FIELDS, *(f"address.{f}" for f in ADDRESS_FIELDS)}
    for name in values:
        if name not in known_fields:
            raise _fail(where, f"values: unknown field {name!r}")
    placeholders = raw.get("placeholders", DEFAULT_PLACEHOLDERS)
    limit = raw.get("shared_contact_limit", DEFAULT_SHARED_CONTACT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise _fail(where, "shared_contact_limit: expected a whole number of customers, at least 1")
    key = raw.get("customer_key")
    mapping = MappingSpec(
        name=str(raw.get("name") or Path(where).stem),
        description=str(raw.get("description") or ""),
        customer_key=str(key) if key is not None else None,
        fields=fields,
        phones=_contacts(raw.get("phones"), f"{where}: phones"),
        emails=_contacts(raw.get("emails"), f"{where}: emails"),
        address_defaults=_str_map(defaults.get("address"), f"{where}: defaults.address", ADDRESS_DEFAULTS),
        customer_defaults=_str_map(defaults.get("customer"), f"{where}: defaults.customer", ("preferredLocale",)),
        values={f: {str(k).strip().lower(): str(v) for k, v in m.items()} for f, m in values.items()},
        placeholders=frozenset(str(p).strip().lower() for p in placeholders or ()) | {""},
        ignore=frozenset(header_key(str(c)) for c in raw.get("ignore") or ()),
        shared_contact_limit=limit,
        full_name=full_name,
        composites=composite_columns,
    )
    if not (mapping.fields.get("lastName") or mapping.fields.get("company") or full_name):
        raise _fail(where, "the mapping must map customer.lastName, customer.fullName or customer.company")
    return mapping


def builtin_names() -> list[str]:
    files = importlib.resources.files("importer.mappings")
    return sorted(p.name.removesuffix(".yaml") for p in files.iterdir() if p.name.endswith(".yaml"))


def _builtin(name: str) -> str | None:
    resource = importlib.resources.files("importer.mappings").joinpath(f"{name}.yaml")
    return resource.read_text(encoding="utf-8") if "/" not in name and resource.is_file() else None


def mapping_text(name_or_path: str) -> str:
    """The YAML text of a built-in mapping or a mapping file."""
    return _builtin(name_or_path) or Path(name_or_path).read_text(encoding="utf-8")


class _Limit(yaml.YAMLError):
    """A bound of BoundedLoader was passed, or a key was written twice; the message says which."""


_MERGE = "tag:yaml.org,2002:merge"


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing more than MAX_ALIASES aliases or nesting deeper than MAX_DEPTH
    (the composer recurses once per level: thousands of `[` would end in a RecursionError), and a key
    written twice in one mapping (PyYAML keeps the last silently: a second `values:` block would drop the
    first). Mapping files and the dealers file are read with it."""

    aliases = 0
    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _Limit(f"more than {MAX_ALIASES} YAML aliases (*name); write the values out")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Limit(f"values nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            # `<<` merges are overrides by design; only keys written out are compared (by tag and text).
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
                continue
            line, key = key_node.start_mark.line + 1, (key_node.tag, key_node.value)
            if key in seen:
                first = seen[key]
                raise _Limit(f"the key {key_node.value!r} is written twice, at lines {first} and {line} "
                             "(the first would be lost): keep one")
            seen[key] = line
        result: dict[Any, Any] = super().construct_mapping(node, deep)
        return result



def parse_yaml(text: str, where: str, what: str = "mapping file", *, limit: int = MAX_MAPPING_BYTES) -> Any:
    """YAML text of a configuration file (a mapping, the dealers file) read with BoundedLoader, within the bounds:
    at most `limit` characters, MAX_ALIASES aliases, MAX_DEPTH levels, no key written twice. ConfigError naming
    `where` (and the line)."""
    if len(text) > limit:
        raise ConfigError(f"{where}: a {what} of more than {limit:,} characters")
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Limit as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: invalid YAML{line} ({getattr(exc, 'problem', None) or exc})") from None
    finally:
        loader.dispose()


def read_yaml(path: Path, what: str = "mapping file", *, limit: int = MAX_MAPPING_BYTES) -> Any:
    """A configuration file read and parsed within parse_yaml's bounds; its size is checked before it is read."""
    try:
        if path.stat().st_size > limit:
            raise ConfigError(f"{path}: a {what} of more than {limit:,} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read the {what} (not UTF-8 text)") from None
    return parse_yaml(text, str(path), what, limit=limit)


def load_mapping(name_or_path: str) -> MappingSpec:
    """A built-in mapping by name, or a mapping file by path."""
    builtin = _builtin(name_or_path)
    if builtin is not None:
        where, text = f"mapping {name_or_path}", builtin
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"unknown mapping {name_or_path!r}: not a built-in ({', '.join(builtin_names())}) "
                              "nor a file")
        return parse_mapping(read_yaml(path), str(path))
    return parse_mapping(parse_yaml(text, where), where)


@dataclass(frozen=True)
class HeaderCheck:
    """How a mapping fits a file's header."""

    #: mapped source columns the header lacks
    missing: list[str]
    #: header columns nothing maps (nor `ignore` lists)
    unmapped: list[str]
    #: mapped source column → the header name as the file spells it
    resolved: dict[str, str]


def check_header(mapping: MappingSpec, header: Iterable[str], unnamed: Iterable[str] = ()) -> HeaderCheck:
    """Which mapped columns the header lacks, which header columns nothing maps; a column without a name
    in the file ("column 5", see reader.unnamed_column) is ignored unless the mapping names it."""
    header = list(header)
    by_key = {header_key(h): h for h in header}
    wanted = mapping.source_columns()
    resolved = {c: by_key[header_key(c)] for c in wanted if header_key(c) in by_key}
    missing = [c for c in wanted if c not in resolved]
    used = {header_key(c) for c in wanted} | mapping.ignore | {header_key(c) for c in unnamed}
    unmapped = [h for h in header if header_key(h) not in used]
    return HeaderCheck(missing, unmapped, resolved)


@dataclass(frozen=True)
class Unread:
    """Rows of one column holding several fields from which some parts could not be read."""

    #: the first canonical field not read (what the warning is filed under)
    field: str
    message: str
    mask: pd.Series
    #: the column's values as read
    values: pd.Series
    #: every canonical field these rows lack
    fields: tuple[str, ...] = ()


def _cleaned(mapping: MappingSpec, column: pd.Series) -> pd.Series:
    """Surrounding spaces gone, placeholders emptied."""
    column = column.fillna("").str.strip()
    return column.where(~column.str.lower().isin(mapping.placeholders), "")


def _replaced(mapping: MappingSpec, canonical: str, column: pd.Series) -> pd.Series:
    replacements = mapping.values.get(base_field(canonical))
    if not replacements:
        return column
    return column.str.lower().map(replacements).fillna(column).astype(column.dtype)


def to_canonical(mapping: MappingSpec, raw: pd.DataFrame, resolved: dict[str, str]) -> pd.DataFrame:
    """Canonical columns of a raw chunk (see read_canonical), without what could not be read."""
    return read_canonical(mapping, raw, resolved)[0]


def read_canonical(mapping: MappingSpec, raw: pd.DataFrame,
                   resolved: dict[str, str]) -> tuple[pd.DataFrame, list[Unread]]:
    """Canonical columns of a raw chunk: placeholders emptied, values mapped, surrounding spaces gone; and the
    parts of columns holding several fields that could not be read.

    A full name is split into the name fields that no column of their own fills on that row; a column holding
    several fields (`composites`) fills each of its fields likewise, before `values:` maps them, so that its
    parts are normalized and checked as separate columns are.
    """
    sources: dict[str, str] = dict(mapping.fields)
    if mapping.full_name:
        sources["fullName"] = mapping.full_name.column
    if mapping.customer_key:
        sources["customerKey"] = mapping.customer_key
    for kind, contacts in (("phone", mapping.phones), ("email", mapping.emails)):
        for i, contact in enumerate(contacts, 1):
            sources[f"{kind}{i}"] = contact.column
            if contact.block:
                sources[f"{kind}{i}.block"] = contact.block
            if contact.consent:
                sources[f"{kind}{i}.consent"] = contact.consent
    out = {canonical: _replaced(mapping, canonical, _cleaned(mapping, raw[resolved[source]]))
           for canonical, source in sources.items()}
    unread = [u for composite in mapping.composites for u in _fill_parts(mapping, composite, raw, resolved, out)]
    if mapping.full_name:
        parts = split_names(out.pop("fullName"), mapping.full_name.order, mapping.full_name.businesses)
        for name in NAME_PARTS:
            own = out.get(name)
            out[name] = parts[name] if own is None else own.where(own != "", parts[name])
    return pd.DataFrame(out, index=raw.index), unread


def _fill_parts(mapping: MappingSpec, composite: Composite, raw: pd.DataFrame, resolved: dict[str, str],
                out: dict[str, pd.Series]) -> list[Unread]:
    """A composite column's parts into `out` where the row has no value of its own; what could not be read."""
    values = _cleaned(mapping, raw[resolved[composite.column]])
    split = composites.split(composite.kind, values)
    missing: list[tuple[str, pd.Series]] = []
    for canonical, part in composite.parts().items():
        own = out.get(canonical)
        taken = _replaced(mapping, canonical, split.parts[part])
        out[canonical] = taken if own is None else own.where(own != "", taken)
        if part in split.unread:
            missing.append((canonical, split.unread[part] if own is None else split.unread[part] & (own == "")))
    if not missing or not any(mask.any() for _, mask in missing):
        return []
    # One warning per row, naming every part it lacks: rows are grouped by the parts they lack.
    names = pd.Series("", index=values.index, dtype="str")
    for canonical, mask in missing:
        names = names.mask(mask, names + canonical + " ")
    found = []
    for combination in names[names != ""].unique():
        lacking = str(combination).split()
        words = [base_field(c) for c in lacking]
        found.append(Unread(lacking[0], composites.unread_message(words), names == combination,
                            values, tuple(lacking)))
    return found
