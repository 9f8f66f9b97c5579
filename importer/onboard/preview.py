"""A mapping tried on a file: for each mapped field, sample values before and after normalization, and
the share of the field's values that normalize cleanly, so that a wrong column shows at a glance."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from importer.prepare.full_names import NAME_PARTS
from importer.prepare.mapping import MappingSpec, read_canonical
from importer.prepare.normalize import normalize_frame
from importer.read.reader import InputFile, read_chunks

SAMPLES = 3
#: Below this share of clean values, a field is pointed out.
SUSPECT = 0.8


@dataclass
class FieldPreview:
    """How one mapped field fares on the file."""

    #: the canonical field, with a contact's label (`phone1 (cell)`)
    name: str
    column: str
    #: (value as read, value after normalization; "" where it was dropped)
    samples: list[tuple[str, str]] = field(default_factory=list)
    #: non-empty values read
    filled: int = 0
    #: of those, values normalization kept
    clean: int = 0

    @property
    def share(self) -> float:
        return self.clean / self.filled if self.filled else 1.0


def _after_column(name: str) -> str:
    """The normalized column a canonical one becomes: a consent or opt-out flag becomes `<slot>.ok`."""
    for suffix in (".block", ".consent"):
        if name.endswith(suffix):
            return name.removesuffix(suffix) + ".ok"
    return name


def _shown(value: object, name: str) -> str:
    if isinstance(value, bool) or name.endswith((".block", ".consent")):
        if pd.isna(value):  # type: ignore[call-overload]
            return ""
        verdict = bool(value)
        if name.endswith(".block"):
            return "do not contact" if not verdict else "no opt-out"
        if name.endswith(".consent"):
            return "may contact" if verdict else "no consent"
        return "yes" if verdict else "no"
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _label(mapping: MappingSpec, name: str) -> str:
    for kind, contacts in (("phone", mapping.phones), ("email", mapping.emails)):
        for i, contact in enumerate(contacts, 1):
            if name.startswith(f"{kind}{i}") and contact.label:
                return f"{name} ({contact.label})"
    return name


def preview(mapping: MappingSpec, source: InputFile, resolved: dict[str, str]) -> list[FieldPreview]:
    """Every mapped field of `mapping` tried on the whole file, in mapping order."""
    fields: dict[str, FieldPreview] = {}
    for chunk in read_chunks(source):
        canonical, unread = read_canonical(mapping, chunk, resolved)
        frame, problems = normalize_frame(canonical, mapping.customer_defaults.get("preferredLocale", ""))
        dropped = {p.field: p.mask for p in problems}
        # A part of a column holding several fields is given where it was read or could not be; not clean where
        # it could not be.
        parts = {c: part for composite in mapping.composites for c, part in composite.parts().items()
                 if c not in mapping.fields}
        lacking = {c: pd.Series(False, index=chunk.index) for c in parts}
        for u in unread:
            for c in u.fields:
                lacking[c] = lacking[c] | u.mask
        columns = [str(c) for c in canonical.columns]
        if mapping.full_name:
            columns = [c for c in columns if c not in NAME_PARTS or c in mapping.fields]
            columns.insert(0, "fullName")
        for name in columns:
            source_column = mapping.full_name.column if name == "fullName" and mapping.full_name \
                else mapping.source_of(name)
            raw = chunk[resolved[source_column]].fillna("").str.strip()
            given = (raw != "") & ~raw.str.lower().isin(mapping.placeholders)
            if name == "fullName":
                after = pd.Series("", index=frame.index, dtype="str")
                for part in ("firstName", "middleName", "lastName"):
                    piece = frame[part].fillna("") if part in frame else after
                    after = after.where(piece == "", after.where(after == "", after + " / ") + piece)
                after = after.where(text_company(frame) == "", text_company(frame) + " (company)")
                bad = given & (after == "")
            else:
                after_name = _after_column(name)
                after = frame[after_name] if after_name in frame else canonical[name]
                bad = given & dropped.get(name, pd.Series(False, index=chunk.index))
                if name in parts:
                    given = given & ((canonical[name] != "") | lacking[name])
                    bad = given & (bad | lacking[name])
            entry = fields.setdefault(name, FieldPreview(_label(mapping, name), source_column))
            entry.filled += int(given.sum())
            entry.clean += int((given & ~bad).sum())
            wanted = SAMPLES - len(entry.samples)
            if wanted > 0:
                seen = [before for before, _ in entry.samples]
                firsts = raw[given & ~raw.isin(seen)].drop_duplicates().head(wanted)
                entry.samples += [(str(firsts[row]), "" if bad[row] else _shown(after[row], name))
                                  for row in firsts.index]
    # The mapping's own order, customer key first; phones and emails after, as the mapping lists them.
    composite_parts = [c for composite in mapping.composites for c in composite.parts()]
    order = {name: i for i, name in enumerate(dict.fromkeys(["customerKey", "fullName", *mapping.fields,
                                                             *composite_parts]))}
    return sorted(fields.values(), key=lambda f: order.get(f.name.split(" ")[0], len(order)))


def text_company(frame: pd.DataFrame) -> pd.Series:
    if "company" in frame:
        return frame["company"].fillna("")
    return pd.Series("", index=frame.index, dtype="str")


def percent(share: float) -> str:
    """A share as a person reads it, never rounded to a claim it does not make: 299 of 300 is "99.7%", not
    "100%", and 1 of 2,000 is "0.1%", not "0%". Whole percents otherwise."""
    whole = f"{share:.0%}"
    if whole == "100%" and share < 1:
        return f"{min(share, 0.999):.1%}"
    if whole == "0%" and share > 0:
        return f"{max(share, 0.001):.1%}"
    return whole


def render(previews: list[FieldPreview]) -> list[str]:
    """One line per field: field ← column, share clean, and the samples as `before → after`."""
    lines = []
    width = max((len(p.name) for p in previews), default=0)
    column_width = max((len(p.column) for p in previews), default=0) + 2
    for p in previews:
        samples = " · ".join(f"{before!r} → {after!r}" if after else f"{before!r} → (dropped)"
                             for before, after in p.samples) or "(no values)"
        flag = "   <-- is this the right column?" if p.share < SUSPECT and p.filled else ""
        lines.append(f"  {p.name:<{width}} ← {p.column!r:<{column_width}} {percent(p.share):>5} clean of "
                     f"{p.filled:>7,}   {samples}{flag}")
    return lines
