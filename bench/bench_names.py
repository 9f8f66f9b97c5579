"""Full names as DMS exports write them, split by importer/prepare/full_names.py, nameparser and probablepeople:
how often each gives the right first, middle and last name or company.

    python -m bench.bench_names [--wrong]

Right means all four of (first, middle, last, company) as a person fixing the row would enter them in
myKaarma: titles dropped, a generational suffix kept with the last name (the API has no suffix field), a
business whole in company, a household ("MARY & JOHN SMITH") as the first person named, case as written.
Each splitter is given what a mapping gives ours: the column may hold businesses.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from importer.prepare.full_names import split_name

Parts = tuple[str, str, str, str]
P = tuple[str, str, str]

#: (shape, name, expected (first, middle, last, company)); a few names have a second reading as right (a
#: household's two first names in firstName, `MARY ANN` as one first name).
CASES: list[tuple[str, str, Parts | tuple[Parts, Parts]]] = [
    ("LAST SUFFIX, FIRST", "GARCIA JR, CARLOS", ("CARLOS", "", "GARCIA JR", "")),
    ("LAST, FIRST SUFFIX", "GARCIA, CARLOS JR", ("CARLOS", "", "GARCIA JR", "")),
    ("LAST FIRST MI", "SMITH JOHN A", ("JOHN", "A", "SMITH", "")),
    ("LAST FIRST MI SUFFIX", "SMITH JOHN A JR", ("JOHN", "A", "SMITH JR", "")),
    ("LAST FIRST MI", "PEREZ JOSE L", ("JOSE", "L", "PEREZ", "")),
    ("title First Last", "Dr. Ann Lee", ("Ann", "", "Lee", "")),
    ("title First MI Last", "Mrs. Linda K. Brown", ("Linda", "K", "Brown", "")),
    ("title First Last suffix", "Mr. Robert Jones Sr.", ("Robert", "", "Jones Sr", "")),
    ("French title", "Mme Sylvie Côté", ("Sylvie", "", "Côté", "")),
    ("company", "ACME FLEET SERVICES LLC", ("", "", "", "ACME FLEET SERVICES LLC")),
    ("company", "BAYSIDE PLUMBING LLC", ("", "", "", "BAYSIDE PLUMBING LLC")),
    ("company", "HERTZ CORP", ("", "", "", "HERTZ CORP")),
    ("company", "Rapid Couriers Inc.", ("", "", "", "Rapid Couriers Inc.")),
    ("company", "CITY OF SPRINGFIELD", ("", "", "", "CITY OF SPRINGFIELD")),
    ("company", "JONES AUTO BODY", ("", "", "", "JONES AUTO BODY")),
    ("company", "Johnson Motors", ("", "", "", "Johnson Motors")),
    ("company", "ABC TRUCKING", ("", "", "", "ABC TRUCKING")),
    ("company", "FIRST BAPTIST CHURCH", ("", "", "", "FIRST BAPTIST CHURCH")),
    ("company (Quebec)", "Garage Tremblay Ltée", ("", "", "", "Garage Tremblay Ltée")),
    ("household", "MARY & JOHN SMITH", (("MARY", "", "SMITH", ""), ("MARY & JOHN", "", "SMITH", ""))),
    ("household", "John and Mary Smith", (("John", "", "Smith", ""), ("John and Mary", "", "Smith", ""))),
    ("household LAST, FIRST", "SMITH, JOHN & MARY", (("JOHN", "", "SMITH", ""), ("JOHN & MARY", "", "SMITH", ""))),
    ("LAST, FIRST MI", "SMITH, JOHN Q", ("JOHN", "Q", "SMITH", "")),
    ("LAST, FIRST MI.", "ANDERSON, SARAH B.", ("SARAH", "B", "ANDERSON", "")),
    ("LAST, FIRST MIDDLE", "WILLIAMS, MARY ANN", (("MARY", "ANN", "WILLIAMS", ""), ("MARY ANN", "", "WILLIAMS", ""))),
    ("LAST, FIRST", "O'BRIEN, PATRICK", ("PATRICK", "", "O'BRIEN", "")),
    ("LAST, FIRST", "MCDONALD, RONALD", ("RONALD", "", "MCDONALD", "")),
    ("particles LAST, FIRST", "DE LA CRUZ, ANA", ("ANA", "", "DE LA CRUZ", "")),
    ("LAST, FIRST (Quebec)", "TREMBLAY, JEAN-FRANÇOIS", ("JEAN-FRANÇOIS", "", "TREMBLAY", "")),
    ("First MI. Last", "John Q. Smith", ("John", "Q", "Smith", "")),
    ("First Last", "Jean-François Tremblay", ("Jean-François", "", "Tremblay", "")),
    ("First Last-Last", "Mary Smith-Jones", ("Mary", "", "Smith-Jones", "")),
    ("First particles Last", "Maria van der Berg", ("Maria", "", "van der Berg", "")),
    ("First particles Last", "Ana de la Cruz", ("Ana", "", "de la Cruz", "")),
    ("First Last suffix", "Thomas Wilson III", ("Thomas", "", "Wilson III", "")),
    ("First Last", "MARÍA NUÑEZ", ("MARÍA", "", "NUÑEZ", "")),
    ("LAST only", "LEE", ("", "", "LEE", "")),
]


def ours(name: str) -> Parts:
    return split_name(name, "first-last", businesses=True)


def _join(*words: str) -> str:
    return " ".join(w.strip().rstrip(".,") if len(w.strip().rstrip(".")) == 1 else w.strip().rstrip(",")
                     for w in words if w and w.strip())


def by_nameparser(name: str) -> Parts:
    from nameparser import HumanName  # measured, not used by the importer

    parsed = HumanName(name)
    # nameparser knows no companies; a generational suffix joins the last name, as the API has no suffix field
    return _join(parsed.first), _join(parsed.middle), _join(parsed.last, parsed.suffix.rstrip(".")), ""


def by_probablepeople(name: str) -> Parts:
    import probablepeople  # measured, not used by the importer

    try:
        tagged, kind = probablepeople.tag(name)
    except probablepeople.RepeatedLabelError:
        return "", "", "", ""
    if kind == "Corporation":
        return "", "", "", name
    first = tagged.get("GivenName", "")
    middle = _join(tagged.get("MiddleName", ""), tagged.get("MiddleInitial", ""))
    last = _join(tagged.get("Surname", ""), tagged.get("SuffixGenerational", "").rstrip("."))
    return _join(first), middle, last, ""


SPLITTERS: dict[str, Callable[[str], Parts]] = {"full_names.py (ours)": ours, "nameparser": by_nameparser,
                                                "probablepeople": by_probablepeople}


def _right(have: Parts, want: Parts | tuple[Parts, Parts]) -> bool:
    return have in want if isinstance(want[0], tuple) else have == want


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wrong", action="store_true", help="list what each splitter got wrong")
    args = parser.parse_args()
    shapes = sorted({shape.split(" (")[0] for shape, _, _ in CASES})
    print(f"{len(CASES)} names; right = first, middle, last and company all as expected")
    print("| splitter | right | " + " | ".join(shapes) + " |")
    print("|---|---:|" + "---:|" * len(shapes))
    for label, split in SPLITTERS.items():
        got = [(shape.split(" (")[0], name, split(name), want) for shape, name, want in CASES]
        per_shape = []
        for shape in shapes:
            of_shape = [g for g in got if g[0] == shape]
            per_shape.append(f"{sum(_right(g[2], g[3]) for g in of_shape)}/{len(of_shape)}")
        right = sum(_right(g[2], g[3]) for g in got)
        print(f"| {label} | {right}/{len(got)} | " + " | ".join(per_shape) + " |")
        if args.wrong:
            for _, name, have, want in got:
                if not _right(have, want):
                    print(f"    {name!r}: {have} (want {want})")


if __name__ == "__main__":
    main()
