"""report.html's "What changed": customers per category, and up to 20 of each with old → new values."""

from __future__ import annotations

import html
from typing import Any

from importer.send.changes import CATEGORIES, CREATED, UNKNOWN, WORDS

#: What each change word means on the page.
WORDS_SHOWN = {CREATED: "created (new to mk-import)", "name": "name", "company": "company",
               "phones": "phone numbers", "emails": "emails", "addresses": "addresses", "vehicles": "vehicles",
               "consent": "consent (OK to call, text, email)", "locale": "language",
               UNKNOWN: "updated, what changed unknown (saved before mk-import kept what it sent)"}


def _e(value: object) -> str:
    """Text as HTML shows it: every value here comes from the file, and is escaped."""
    return html.escape(str(value), quote=True)


def _examples(category: str, examples: list[dict[str, Any]], total: int) -> str:
    rows = []
    for example in examples:
        new = str(example.get("new", ""))
        if category == "vehicles":
            moves = [f"added {v}" for v in example.get("added", ())] + \
                    [f"removed {v}" for v in example.get("removed", ())]
            new = "; ".join(moves) if moves else new + " (details changed)"
        rows.append(f'<tr><td>{_e(example.get("key", ""))}</td><td class="old">{_e(example.get("old", ""))}</td>'
                    f'<td class="arrow">→</td><td class="new">{_e(new)}</td></tr>')
    shown = f"{len(examples)} of {total:,} customers" if total > len(examples) else f"{len(examples)} customers"
    return (f'<details class="change" data-category="{_e(category)}" open><summary>{_e(WORDS_SHOWN[category])}: '
            f'{shown}</summary><table class="changes"><tr><th>customer</th><th>before</th><th></th>'
            f'<th>after</th></tr>{"".join(rows)}</table></details>')


def changes_section(summary: dict[str, Any], examples: dict[str, list[dict[str, Any]]]) -> str:
    """The section, from summary.json (counts, a refused mass change) and changes.json (examples)."""
    mass = summary.get("mass_change")
    counts: dict[str, int] = summary.get("changes") or (summary.get("forecast") or {}).get("changes") or {}
    parts = ['<section id="changes">']
    if mass:
        over = "; ".join(f"{o['category']}: {o['customers']:,} of {mass['known']:,} known customers ({o['share']}%)"
                         for o in mass.get("over", ()))
        limit = float(summary.get("max_changed") or 0)
        parts.append(f'<p class="verdict bad" id="mass-change">Nothing was sent: the run would have changed more than '
                     f'{limit:g}% of the customers mk-import knows ({_e(over)}). If the export is right, run again '
                     'with --allow-mass-change; otherwise fix the export.</p>')
    elif summary.get("command") == "validate" and counts:
        parts.append('<p class="note">What a run with this state would change.</p>')
    shown = [(word, int(counts.get(word, 0))) for word in WORDS if counts.get(word)]
    if shown:
        body = "".join(f'<tr><td>{_e(WORDS_SHOWN[word])}</td><td class="n" data-change="{_e(word)}">{n:,}</td></tr>'
                       for word, n in shown)
        parts.append(f'<table class="counts"><tr><th>what</th><th>customers</th></tr>{body}</table>')
    elif summary.get("command") == "validate":
        parts.append('<p class="note">validate sends nothing; given the state (--state), it says what a run would '
                     'change.</p>' if "forecast" not in summary else '<p class="note">A run would change nothing.</p>')
    elif "changes" not in summary:
        parts.append('<p class="note">These reports do not say what changed (an earlier mk-import made them).</p>')
    elif not mass:
        parts.append('<p class="note">Nothing changed in myKaarma.</p>')
    if examples:
        parts.append('<p class="note">Up to 20 customers per category, with what myKaarma held before and what '
                     'it holds now.</p>' if not mass else '<p class="note">What the refused run would have '
                     'changed, up to 20 customers per category.</p>')
        totals = {o["category"]: int(o["customers"]) for o in (mass or {}).get("over", ())}
        parts += [_examples(category, examples[category], totals.get(category, int(counts.get(category, 0))))
                  for category in CATEGORIES if examples.get(category)]
    parts.append("</section>")
    return "".join(parts)
