"""A full-name column split into first, middle and last name (or left whole as a company), by fixed rules.

The rules, in order (docs/mappings.md, "Full names"):
1. Titles (`Mr`, `Mrs`, `Ms`, `Dr`, `M.`, `Mme`, ...) go; suffixes (`Jr`, `Sr`, `II`, `III`, `IV`) stay
   with the last name (`Smith Jr`); a one-letter initial loses its period (`Q.` → `Q`).
2. Where the column may hold businesses, a name with a business word (`LLC`, `Inc`, `Corp`, `Motors`,
   `Services`, `Ltée`, ...) or a digit is a company, left whole, with no person's name.
3. A comma means `LAST, FIRST MIDDLE`: `SMITH, JOHN Q` → John / Q / Smith.
4. Without a comma, the order is `FIRST MIDDLE LAST` (`John Q. Smith`), unless the mapping says
   `order: last-first`, or the name has three or more words and ends with a one-letter initial, which is
   how DMS exports write `LAST FIRST MIDDLE` (`SMITH JOHN Q`).
5. In `FIRST ... LAST` order, the last name takes the particles before it (`Van der Berg`, `de la Cruz`);
   in `LAST FIRST` order, the leading particles belong to the last name.
6. A single word is a last name. Letter case is kept as written.
7. A household (`MARY & JOHN SMITH`, `SMITH, JOHN & MARY`, `Marie et Jean Roy`) is the first person named,
   with the last name they share: `MARY` / `SMITH`.

Measured against nameparser and probablepeople on 37 names of the shapes DMS exports write (bench/bench_names.py,
BENCHMARKS.md), rules 1-6 were right on 34 (rule 7 was then added for the three households they missed),
probablepeople on 31, nameparser on 23:
nameparser knows no companies and reads `SMITH JOHN A` as first SMITH; probablepeople takes `SMITH JOHN A`,
`Mme Sylvie Côté` and `MARÍA NUÑEZ` for companies and `JONES AUTO BODY` for a person. So the rules stay.
"""

from __future__ import annotations

import re

import pandas as pd

NAME_PARTS = ("firstName", "middleName", "lastName", "company")
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "m", "mme", "mlle", "sir"})
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "esq", "phd", "md", "dds"})
_PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "la", "le", "st",
                        "ste", "dos", "das", "ter", "ten", "bin", "ibn", "al", "el", "mac", "vander"})
#: Words that make a name a company's (matched on whole words, case and dots ignored).
BUSINESS_WORDS = frozenset({
    "llc", "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "lp", "llp", "pllc",
    "pc", "plc", "gmbh", "group", "holdings", "enterprises", "enterprise", "services", "service", "solutions",
    "motors", "motor", "auto", "automotive", "autos", "sales", "rental", "rentals", "leasing", "fleet", "trucking",
    "transport", "transportation", "logistics", "construction", "contracting", "contractors", "plumbing",
    "electric", "roofing", "landscaping", "couriers", "courier", "delivery", "bank", "trust", "baptist", "school",
    "district", "county", "city", "township", "village", "university", "college", "hospital", "clinic",
    "associates", "partners", "international", "industries", "systems", "properties", "realty", "farms",
    "dept", "department", "agency", "foundation", "ministries", "garage", "ltee", "ltée", "enr", "senc", "cie",
    "inc.", "dealership", "towing", "repair", "body", "shop", "store", "market", "restaurant",
})
_INITIAL = re.compile(r"^[^\W\d_]\.?$")
_CONJUNCTIONS = frozenset({"&", "and", "et", "+"})
_WORD_CLEAN = re.compile(r"[.,'()]")


def _word(token: str) -> str:
    return _WORD_CLEAN.sub("", token).casefold()


def is_business(name: str) -> bool:
    """True for a name that reads as a company's: a business word or a digit in it."""
    if any(c.isdigit() for c in name):
        return True
    words = {_word(t) for t in re.split(r"[\s&/]+", name) if t}
    return not words.isdisjoint(BUSINESS_WORDS)


def _clean(tokens: list[str]) -> list[str]:
    """Leading titles dropped (`M.` is Monsieur there, an initial elsewhere), initials without their period."""
    start = 0
    while start < len(tokens) - 1 and _word(tokens[start]) in _TITLES:
        start += 1
    return [t.rstrip(".") if _INITIAL.match(t) else t for t in tokens[start:]]


def _take_suffixes(tokens: list[str]) -> tuple[list[str], list[str]]:
    suffixes: list[str] = []
    while len(tokens) > 1 and _word(tokens[-1]) in _SUFFIXES:
        suffixes.insert(0, tokens.pop().rstrip("."))
    return tokens, suffixes


def _first_person(name: str, order: str) -> str:
    """A household's first person with the last name they share (rule 7); any other name as it is."""
    head, comma, tail = name.partition(",")
    words = (tail if comma else name).split()
    cut = next((i for i, w in enumerate(words) if w.casefold() in _CONJUNCTIONS), None)
    if cut is None or cut == 0 or cut == len(words) - 1:
        return name
    before, after = words[:cut], words[cut + 1:]
    if comma:
        return f"{head}, {' '.join(before)}"
    if len(before) > 1 or order == "last-first":
        return " ".join(before)  # `JOHN SMITH & MARY JONES`: a whole name before the conjunction
    shared = split_name(" ".join(after), order)[2]
    return f"{before[0]} {shared}" if shared else name


def split_name(name: str, order: str = "first-last", businesses: bool = False) -> tuple[str, str, str, str]:
    """(first, middle, last, company) of one full name, by the rules in the module docstring."""
    name = " ".join(name.split())
    if not name:
        return "", "", "", ""
    if businesses and is_business(name):
        return "", "", "", name
    name = _first_person(name, order)
    head, comma, tail = name.partition(",")
    tail_tokens = tail.replace(",", " ").split()
    if comma and tail_tokens and not all(_word(t) in _SUFFIXES for t in tail_tokens):
        last_tokens, last_suffixes = _take_suffixes(_clean(head.split()))
        rest, suffixes = _take_suffixes(_clean(tail_tokens))
        if not rest:
            return "", "", " ".join(last_tokens + last_suffixes + suffixes), ""
        return rest[0], " ".join(rest[1:]), " ".join(last_tokens + last_suffixes + suffixes), ""
    tokens, suffixes = _take_suffixes(_clean(name.replace(",", " ").split()))
    if len(tokens) == 1:
        return "", "", " ".join(tokens + suffixes), ""
    last_first = order == "last-first" or (
        len(tokens) >= 3 and _INITIAL.match(tokens[-1]) is not None and _INITIAL.match(tokens[0]) is None)
    if last_first:
        split = 1
        while split < len(tokens) - 1 and _word(tokens[split - 1]) in _PARTICLES:
            split += 1
        rest = tokens[split:]
        return rest[0], " ".join(rest[1:]), " ".join(tokens[:split] + suffixes), ""
    start = len(tokens) - 1
    while start > 1 and _word(tokens[start - 1]) in _PARTICLES:
        start -= 1
    return tokens[0], " ".join(tokens[1:start]), " ".join(tokens[start:] + suffixes), ""


def split_names(values: pd.Series, order: str = "first-last", businesses: bool = False) -> pd.DataFrame:
    """NAME_PARTS columns for a Series of full names; each distinct name is split once."""
    codes, uniques = pd.factorize(values)
    parts = [split_name(str(u), order, businesses) for u in uniques]
    out = {}
    for i, column in enumerate(NAME_PARTS):
        taken = pd.Series([p[i] for p in parts], dtype="object").to_numpy(dtype=object)
        out[column] = pd.Series(taken.take(codes) if len(codes) else [], index=values.index, dtype="str")
    return pd.DataFrame(out, index=values.index)
