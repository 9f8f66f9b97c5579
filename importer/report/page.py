"""report.html: one self-contained page about a run (verdict, charts, the rows to fix) built from its reports.

The page loads nothing: styles, script, data and charts (SVG drawn here) are inline, and a
Content-Security-Policy forbids every fetch, so it opens from disk and prints anywhere. It is built from
summary.json, errors.csv, timeline.csv and the results (results.csv, or the table a run has in memory),
so `mk-import report OUT_DIR` draws the same page for a run long after it.
"""

from __future__ import annotations

import datetime
import html
import importlib.resources
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from importer.error_codes import explain_warning
from importer.prepare.mapping import MappingSpec
from importer.prepare.normalize import PLACEHOLDER_MESSAGE
from importer.prepare.shared_contacts import WARNING_START as SHARED_WARNING_START
from importer.read.formulas import undefuse
from importer.report.changes_view import changes_section
from importer.report.files import ERROR_STATUSES
from importer.report.folders import private_file
from importer.report.known_problems import EVERY_NIGHT
from importer.report.outcomes import API_COLUMN
from importer.report.reasons import Reason, ReasonParser
from importer.report.run_reports import RunReports, read_reports, shown_columns
from importer.report.trend import trend_section
from importer.send.timeline import Second
from importer.status import exit_words

#: Rows the printed table holds at most (the page on screen holds every row).
PRINT_CAP = 5_000
#: Points a timeline chart draws at most: longer runs are drawn in bins of several seconds.
MAX_POINTS = 300
STATUS_COLORS = {"success": "#1a7f37", "unchanged": "#8c959f", "valid": "#2da44e", "invalid": "#cf222e",
                 "failed": "#8250df", "not_attempted": "#bf8700"}
STATUS_ORDER = ("success", "unchanged", "valid", "invalid", "failed", "not_attempted")
#: Warnings a row is not to fix for: the customer has no such contact of their own (by the words they begin
#: with: a row's warning about a shared contact says how many share it, the problem tally's does not).
NOTHING_TO_FIX = (PLACEHOLDER_MESSAGE, SHARED_WARNING_START)


def nothing_to_fix(problem: str) -> bool:
    return problem.startswith(NOTHING_TO_FIX)


_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'")


# -- the page ----------------------------------------------------------------------------------------
def _html(value: object) -> str:
    """Text as HTML shows it: every value on the page comes from the file or the API, and is escaped."""
    return html.escape(str(value), quote=True)


def _count(value: int) -> str:
    """A count with thousands separators."""
    return f"{value:,}"


def verdict(summary: dict[str, Any]) -> tuple[str, bool]:
    """The run in one sentence, and whether it went well."""
    counts: dict[str, int] = summary.get("counts", {})
    rows = int(summary.get("rows", sum(counts.values())))
    invalid, failed = counts.get("invalid", 0), counts.get("failed", 0)
    left = counts.get("not_attempted", 0)
    if rows == 0:
        return "The file has no data rows.", False
    problems = []
    if invalid:
        problems.append(f"{_count(invalid)} {'needs' if invalid == 1 else 'need'} fixing")
    if failed:
        problems.append(f"{_count(failed)} failed at the API")
    if left and summary.get("stop_code") == "mass_change":
        problems.append(f"{_count(left)} not sent: refused as a mass change (see What changed)")
    if left and summary.get("limit") and not summary.get("stop_code"):
        problems.append(f"{_count(left)} not attempted (beyond --limit {summary['limit']}: a run without --limit "
                        "sends them)")
    elif left:
        why = summary.get("stop_reason") or "the run stopped early"
        problems.append(f"{_count(left)} not attempted ({why}; rerunning resumes)")
    if summary.get("command") == "validate":
        ready = counts.get("valid", 0)
        head = f"All {_count(rows)} rows are ready to import" if ready == rows else \
            f"{_count(ready)} of {_count(rows)} rows are ready to import"
    else:
        done = counts.get("success", 0) + counts.get("unchanged", 0)
        unchanged = counts.get("unchanged", 0)
        head = (f"All {_count(rows)} rows imported" if done == rows
                else f"{_count(done)} of {_count(rows)} rows imported")
        if unchanged:
            head += f" ({_count(unchanged)} unchanged since the last run, not sent)"
    sentence = head + ("; " + ", ".join(problems) if problems else "") + "."
    to_fix = int(summary.get("to_fix") or 0)
    if to_fix:  # besides the invalid and failed rows: those saved without a value, or naming two people
        sentence += f" {_count(to_fix)} {'row' if to_fix == 1 else 'rows'} to fix below."
    return sentence, not problems


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _facts(summary: dict[str, Any]) -> str:
    code = summary.get("exit_code")
    items: list[tuple[str, str]] = [
        ("File", summary.get("input", {}).get("file", "")),
        ("Mapping", summary.get("mapping", "")),
        ("Department", summary.get("department") or ("(validate: nothing sent)"
                                                     if summary.get("command") == "validate" else "")),
        ("Duration", _duration(float(summary.get("duration_s") or 0))),
        ("Exit code", f"{code} ({exit_words(int(code)) or 'see docs/reports.md'})" if code is not None else ""),
        ("Rows", f"{_count(int(summary.get('rows', 0)))} ({_count(int(summary.get('customers', 0)))} customers)"),
    ]
    if summary.get("command") == "run":
        items += [("Requests", f"{_count(int(summary.get('requests_sent', 0)))} sent, "
                               f"{_count(int(summary.get('retries', 0)))} retries, "
                               f"{_count(int(summary.get('rate_limited', 0)))} answered 429 (too many requests)"),
                  ("API", summary.get("api_url") or "")]
    items.append(("Input SHA-256", summary.get("input", {}).get("sha256", "")))
    body = "".join(f"<tr><th>{_html(k)}</th><td data-fact=\"{_html(k.lower())}\">{_html(v)}</td></tr>"
                   for k, v in items if v)
    return f'<table class="facts">{body}</table>'


def _status_section(summary: dict[str, Any]) -> str:
    counts: dict[str, int] = summary.get("counts", {})
    order = [s for s in STATUS_ORDER if s in counts] + sorted(s for s in counts if s not in STATUS_ORDER)
    table = "".join(f'<tr><td><span class="swatch" style="background:{STATUS_COLORS.get(s, "#57606a")}"></span>'
                    f'{_html(s)}</td><td class="n" data-status="{_html(s)}">{_count(int(counts[s]))}</td></tr>'
                    for s in order)
    bars = [(s, int(counts[s]), STATUS_COLORS.get(s, "#57606a"), "") for s in order]
    return (f'<div class="grid"><table class="counts" id="counts"><tr><th>status</th><th>rows</th></tr>{table}'
            f'</table>{_hbars(bars, "Rows by status")}</div>')


def _hbars(bars: Sequence[tuple[str, int, str, str]], title: str, *, label_width: int = 150,
           notes: Sequence[str] | None = None) -> str:
    """A horizontal bar chart: (label, value, colour, extra attributes of the bar's group) per bar."""
    if not bars:
        return ""
    width, bar_h, gap = label_width + 570, 20, 8
    area = 300
    top = max(v for _, v, _, _ in bars) or 1
    height = len(bars) * (bar_h + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}"><title>{_html(title)}</title>']
    for i, (label, value, colour, attrs) in enumerate(bars):
        y = gap + i * (bar_h + gap)
        length = max(1.0, area * value / top) if value else 0.0
        note = f" · {notes[i]}" if notes else ""
        shown_note = note if len(note) <= 75 else note[:74] + "…"  # whole in the bar's tooltip
        fits = label_width // 7
        short = label if len(label) <= fits else label[:fits - 1] + "…"
        parts.append(f'<g{attrs}><title>{_html(label)}: {_count(value)}{_html(note)}</title>'
                     f'<text x="{label_width - 8}" y="{y + 14}" text-anchor="end" fill="#1f2328">{_html(short)}</text>'
                     f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_h}" rx="3" fill="{colour}"/>'
                     f'<text x="{label_width + length + 6:.1f}" y="{y + 14}" fill="#1f2328">{_count(value)}'
                     f'<tspan fill="#59636e">{_html(shown_note)}</tspan></text></g>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class _Table:
    """The rows needing attention, as the page's script reads them."""

    columns: list[str]
    problems: list[dict[str, str]]
    #: per row: its number, status (a place in `statuses`), reasons and the message about the row as a whole;
    #: as JSON text, a chunk of rows at a time: a Python list per row cost a migration's page 120 MB
    rows: list[str]
    #: how many rows
    count: int
    #: the rows' original values (errors.csv's, a column of them at a time in the rows' order: a copy of the
    #: whole table in that order cost a migration's page 100 MB more)
    originals: pd.DataFrame
    #: the rows' numbers, in the table's order
    order: pd.Index
    #: (column or None, problem) → rows, the first row showing it, and the column's place in the table
    tally: Counter[tuple[str | None, str]]
    first: dict[tuple[str | None, str], int]
    place: dict[tuple[str | None, str], int]
    #: problem label → (rows, meaning, fix), for the plain words
    words: dict[str, tuple[int, str, str]]
    #: the statuses the rows' status numbers stand for
    statuses: list[str]

    def values(self) -> Iterator[str]:
        """One JSON array per column, made by pandas in C, one column at a time as the page is written:
        Python strings of every cell would cost the page of 60,000 rows to fix 70 MB."""
        for column in self.columns:
            # orient="values" (a bare JSON array) is pandas' own; its type stubs list only the other orients.
            values = self.originals[column].reindex(self.order) if column in self.originals else \
                pd.Series("", index=self.order, dtype="str")
            yield str(undefuse(values.fillna("").astype("str")).to_json(  # type: ignore[call-overload]
                orient="values", force_ascii=False))


#: Rows of the table turned into JSON text at a time.
_ROWS_AT_A_TIME = 20_000


def _attention_table(reports: RunReports, mapping: MappingSpec | None) -> _Table:
    results, originals = reports.results, reports.originals
    # The rows to fix are errors.csv's, exactly: the same list in the files, the summary and here.
    wanted = (results.loc[results.index.isin(originals.index), PAGE_RESULT_COLUMNS]
              if reports.listed else results[results["status"].isin(ERROR_STATUSES)])
    # New problems first, then those earlier runs reported too, each in file order.
    times = reports.times_seen.reindex(wanted.index).fillna(1).astype("int64")
    order = np.lexsort((wanted.index.to_numpy(), (times > 1).to_numpy()))
    wanted, times = wanted.iloc[order], times.iloc[order]
    columns = list(originals.columns) if reports.listed else shown_columns(reports.header, mapping)
    at = {c: i for i, c in enumerate(columns)}
    parser = ReasonParser(reports.header or columns, mapping.fields if mapping is not None else None)
    statuses = list(STATUS_ORDER)
    problem_at: dict[str, int] = {}
    problems: list[dict[str, str]] = []
    tally: Counter[tuple[str | None, str]] = Counter()
    first: dict[tuple[str | None, str], int] = {}
    place: dict[tuple[str | None, str], int] = {}
    words: dict[str, tuple[int, str, str]] = {}
    chunks: list[str] = []
    for start in range(0, len(wanted), _ROWS_AT_A_TIME):
        part = wanted.iloc[start:start + _ROWS_AT_A_TIME]
        rows: list[list[Any]] = []
        for row, status, code, message, warnings, seen in zip(
                part.index.tolist(), part["status"].tolist(), part["error_code"].tolist(),
                part["error_message"].tolist(), part["warnings"].tolist(),
                times.iloc[start:start + _ROWS_AT_A_TIME].tolist(), strict=True):
            reasons: list[Reason] = parser.reasons(code, message, warnings)
            cells = []
            for reason in reasons:
                index = problem_at.get(reason.problem)
                if index is None:
                    index = problem_at[reason.problem] = len(problems)
                    problems.append({"label": reason.problem, "meaning": reason.meaning, "fix": reason.fix})
                column = at.get(reason.column, -1) if reason.column is not None else -1
                cells.append([column, index, 1 if reason.error else 0])
                key = (reason.column, reason.problem)
                tally[key] += 1
                first.setdefault(key, row)
                place.setdefault(key, column)
                count, meaning, fix = words.get(reason.problem, (0, reason.meaning, reason.fix))
                words[reason.problem] = (count + 1, meaning, fix)
            # An error about the row as a whole (an API refusal) shows its message: the API's own words.
            detail = message if code and reasons and reasons[0].column is None and code != "INVALID_FIELD" else ""
            if status not in statuses:
                statuses.append(status)
            rows.append([row, statuses.index(status), cells, detail, int(seen)])
        chunks.append(_json_for_script(rows)[1:-1])
    return _Table(columns, problems, chunks, len(wanted), originals, wanted.index, tally, first, place, words,
                  statuses)


def _problems_section(summary: dict[str, Any], table: _Table) -> str:
    """Problems by column: every problem of the rows to fix, each a button that filters the table to its rows;
    then the warnings there is nothing to fix for (placeholder and shared contacts, from summary.json)."""
    problem_at = {p["label"]: i for i, p in enumerate(table.problems)}
    top = max(table.tally.values(), default=1)
    buttons = []
    for (column, problem), n in table.tally.most_common():
        if nothing_to_fix(problem):
            continue  # listed apart, with the file's count: a row to fix may carry one besides its problem
        index = problem_at[problem]
        words = table.problems[index]
        place = table.place[(column, problem)]
        label = f"{column if column is not None else '(the row)'}: {problem}"
        buttons.append(
            f'<button type="button" class="problem" data-filter-problem="{index}" '
            f'data-filter-column="{place if column is not None else ""}" data-rows="{n}" '
            f'title="{_html(words["meaning"])}. To fix: {_html(words["fix"])}">'
            f'<span class="label">{_html(label)}</span><span class="track"><span class="bar" '
            f'style="width:{max(1.0, 100 * n / top):.1f}%"></span></span><span class="n">{_count(n)}</span>'
            f'<span class="eg">e.g. row {table.first[(column, problem)]}</span></button>')
    kept = [item for item in summary.get("problems", [])
            if nothing_to_fix(str(item.get("problem", ""))) and item.get("column") != API_COLUMN]
    out = []
    if buttons:
        out.append('<p class="note">Every problem of the rows to fix, most frequent first: a click shows its rows '
                   'in the table below.</p>')
        out.append(f'<div class="problems" id="problems">{"".join(buttons)}</div>')
    if kept:
        items = "".join(f"<li>{_html(item.get('column', ''))}: {_html(item.get('problem', ''))}: "
                        f"{_count(int(item.get('rows', 0)))} rows (e.g. row {_html(item.get('example_row', ''))})</li>"
                        for item in kept)
        out.append('<p class="note">Treated as empty, nothing to fix in the file (the customer has no such '
                   f'contact of their own):</p><ul class="kept" id="kept">{items}</ul>')
    return "".join(out) or '<p class="note">No problems: every row could be read as it is.</p>'


# -- timeline ----------------------------------------------------------------------------------------
@dataclass
class _Bin:
    start: int
    seconds: int
    attempts: int
    successes: int
    rate_limited: int
    retries: int
    p50: float
    p95: float


def _bins(timeline: Sequence[Second]) -> list[_Bin]:
    size = max(1, math.ceil(len(timeline) / MAX_POINTS))
    out = []
    for start in range(0, len(timeline), size):
        part = timeline[start:start + size]
        attempts = sum(s.attempts for s in part)
        # A bin's p50 is its seconds' p50s weighted by their attempts; its p95 the worst second's.
        p50 = sum(s.latency_p50_ms * s.attempts for s in part) / attempts if attempts else 0.0
        out.append(_Bin(part[0].second, len(part), attempts, sum(s.successes for s in part),
                        sum(s.rate_limited for s in part), sum(s.retries for s in part), p50,
                        max(s.latency_p95_ms for s in part)))
    return out


def _nice(top: float) -> float:
    if top <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(top))
    return next(float(m * magnitude) for m in (1, 2, 2.5, 5, 10) if m * magnitude >= top)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _line_chart(bins: list[_Bin], series: list[tuple[str, str, list[float], str]], unit: str, title: str,
                marks: list[tuple[str, str, list[int]]]) -> str:
    """Lines over the run's seconds: (name, colour, values, dash) per line; marks above the plot."""
    width, height, left, right, top, bottom = 900, 230, 56, 16, 30, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    end = bins[-1].start + bins[-1].seconds
    y_top = _nice(max((max(v) for _, _, v, _ in series if v), default=1.0) * 1.05)

    def x(second: float) -> float:
        return left + plot_w * second / max(end, 1)

    def y(value: float) -> float:
        return top + plot_h * (1 - value / y_top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}"><title>{_html(title)}</title>']
    for i in range(5):
        value = y_top * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#eaeef2"/><text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
                     f'fill="#59636e">{value:g}</text>')
    for i in range(6):
        second = end * i / 5
        parts.append(f'<text x="{x(second):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                     f'fill="#59636e">{_clock(second)}</text>')
    parts.append(f'<text x="{left}" y="{top - 16}" fill="#59636e">{_html(unit)}</text>')
    for name, colour, values, dash in series:
        points = " ".join(f"{x(b.start + b.seconds / 2):.1f},{y(v):.1f}" for b, v in zip(bins, values, strict=True))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" stroke-dasharray="{dash}" '
                     f'points="{points}"><title>{_html(name)}</title></polyline>')
    for row, (name, colour, counts) in enumerate(marks):
        for b, count in zip(bins, counts, strict=True):
            if count:
                cx = x(b.start + b.seconds / 2)
                parts.append(f'<g class="mark" data-mark="{_html(name)}">'
                             f'<title>{_clock(b.start)}: {count} {_html(name)}'
                             f'</title><rect x="{cx - 2:.1f}" y="{top - 12 + row * 6}" width="4" height="5" '
                             f'fill="{colour}"/><line x1="{cx:.1f}" x2="{cx:.1f}" y1="{top}" y2="{top + plot_h}" '
                             f'stroke="{colour}" stroke-opacity=".25"/></g>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#8c959f"/>')
    parts.append("</svg>")
    return "".join(parts)


def _timeline_section(timeline: Sequence[Second]) -> str:
    if not timeline or not any(s.attempts for s in timeline):
        return '<p class="note">No request was sent.</p>'
    bins = _bins(timeline)
    rate = [b.attempts / b.seconds for b in bins]
    ok = [b.successes / b.seconds for b in bins]
    marks = [("answered 429", "#cf222e", [b.rate_limited for b in bins]),
             ("retries", "#bf8700", [b.retries for b in bins])]
    size = bins[0].seconds
    binned = f" (each point {size} s)" if size > 1 else ""
    total_429 = sum(b.rate_limited for b in bins)
    total_retries = sum(b.retries for b in bins)
    legend = ('<div class="legend"><span style="color:#0969da">━ requests/s</span>'
              '<span style="color:#1a7f37">━ saved/s</span>'
              f'<span style="color:#cf222e">▮ 429 answers ({_count(total_429)})</span>'
              f'<span style="color:#bf8700">▮ retries ({_count(total_retries)})</span></div>')
    latency_legend = ('<div class="legend"><span style="color:#0969da">━ median</span>'
                      '<span style="color:#8250df">┅ 95th percentile</span></div>')
    return (f'<p class="note">Requests per second from the start of sending{binned}; the marks above the plot '
            'are seconds in which the API answered 429 (too many requests) or a request was retried.</p>' + legend +
            _line_chart(bins, [("requests per second", "#0969da", rate, ""), ("saved per second", "#1a7f37", ok, "")],
                        "requests / s", "Requests per second", marks) +
            '<p class="note">Latency of each request, from sending to the answer.</p>' + latency_legend +
            _line_chart(bins, [("median latency", "#0969da", [b.p50 for b in bins], ""),
                               ("95th percentile latency", "#8250df", [b.p95 for b in bins], "5 3")],
                        "milliseconds", "Latency", marks))


# -- assembly ----------------------------------------------------------------------------------------
def _asset(name: str) -> str:
    return importlib.resources.files("importer.report").joinpath(name).read_text(encoding="utf-8")


def _json_for_script(value: Any) -> str:
    """JSON safe inside <script>: no `</script>` or comment opener can appear in it."""
    return _script_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _script_safe(text: str) -> str:
    """JSON text with the characters that could end or comment out its <script> escaped."""
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _words_section(summary: dict[str, Any], table: _Table) -> str:
    """Plain words for every problem on the page: those of the rows to fix (counted over them), and the
    warnings there is nothing to fix for (counted over the file, from summary.json)."""
    # Those with nothing to fix are counted over the file (summary.json), not over the rows to fix.
    words = {label: told for label, told in table.words.items() if not nothing_to_fix(label)}
    for item in summary.get("problems", []):
        problem = str(item.get("problem", ""))
        if nothing_to_fix(problem) and item.get("column") != API_COLUMN:
            explanation = explain_warning(problem)
            count = words.get(problem, (0, "", ""))[0]
            words[problem] = (count + int(item.get("rows", 0)), explanation.meaning, explanation.fix)
    if not words:
        return ""
    body = "".join(f"<tr><td><code>{_html(label)}</code></td><td class=\"n\">{_count(count)}</td>"
                   f"<td>{_html(meaning)}</td><td>{_html(fix)}</td></tr>"
                   for label, (count, meaning, fix) in sorted(words.items(), key=lambda i: -i[1][0]))
    return ('<h2>What the problems mean</h2><table class="words"><tr><th>problem</th><th>rows</th>'
            f'<th>what it means</th><th>what to change</th></tr>{body}</table>')


def page_parts(reports: RunReports, mapping: MappingSpec | None = None) -> Iterator[str]:
    """The page, in parts to write one after the other: the rows' data, the largest part, goes out a chunk
    and a column at a time, never whole in one text."""
    summary = reports.summary
    sentence, good = verdict(summary)
    table = _attention_table(reports, mapping)
    data = {"columns": table.columns, "statuses": table.statuses, "problems": table.problems,
            "printCap": PRINT_CAP, "everyNight": EVERY_NIGHT}
    head_cells = "".join(f"<th title=\"{_html(c)}\">{_html(c)}</th>" for c in table.columns)
    flagged = {column for column, _ in table.tally}
    widths = [240 if c in flagged else min(200, max(90, 8 * len(c) + 24)) for c in table.columns]
    cols = "".join(f'<col style="width:{w}px">' for w in widths)
    table_width = 70 + 90 + 280 + sum(widths)
    run_part = (f"<h2>Requests over time</h2>{_timeline_section(reports.timeline)}"
                if summary.get("command") == "run" else "")
    written = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"mk-import {summary.get('command', '')}: {summary.get('input', {}).get('file', '')}"
    rows_part = (
        '<div class="filters"><label>status <select id="f-status"><option value="">all</option></select></label>'
        '<label>column <select id="f-column"><option value="">all</option></select></label>'
        '<label>problem <select id="f-problem"><option value="">all</option></select></label>'
        '<label>search <input type="search" id="f-search" placeholder="name, value, row..."></label>'
        '<span id="shown-count"></span></div>'
        '<noscript><p>The table needs JavaScript; errors.csv and errors.xlsx hold the same rows.</p></noscript>'
        '<p class="print-note" id="print-note"></p>'
        f'<div class="scroller" id="rows-scroller"><table class="rows" style="width:{table_width}px">'
        '<colgroup><col style="width:70px">'
        f'<col style="width:90px"><col style="width:280px">{cols}</colgroup><thead><tr><th>row</th><th>status</th>'
        f'<th>why (the row as a whole)</th>{head_cells}</tr></thead><tbody id="rows-body"></tbody></table></div>'
        if table.count else '<p class="note">No row needs attention.</p>')
    yield (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_html(title)}</title><style>{_asset('page.css')}</style></head><body>"
        f"<header><h1>mk-import {_html(summary.get('command', ''))} report</h1>"
        f'<p class="verdict {"good" if good else "bad"}" id="verdict">{_html(sentence)}</p>{_facts(summary)}</header>'
        f"<h2>Rows by status</h2>{_status_section(summary)}"
        f"<h2>What changed</h2>{changes_section(summary, reports.changes)}"
        f"<h2>Problems by column</h2>{_problems_section(summary, table)}"
        f"{run_part}"
        f"<h2>Rows to fix ({_count(table.count)})</h2>"
        '<p class="note">The rows of errors.csv and errors.xlsx: every row that is <b>invalid</b> (not sent: fix '
        "it in the file) or <b>failed</b> (refused at the API), and every row saved (or, from validate, to be "
        "sent) without a value it carried that could not be used, or whose customer key names two people. The "
        "original values of the mapped columns, the reason under the cell it concerns (hover for what to "
        "change). Fix the rows in errors.xlsx or errors.csv and import that file again with the same "
        f"mapping. {_known_note(summary)}</p>{rows_part}"
        f"{_words_section(summary, table)}"
        f"{'<h2>Recent runs</h2>' + trend_section(reports.runs) if reports.runs else ''}"
        f"<footer>Written {written} by {_html(summary.get('program', 'mk-import'))} from the reports in "
        f"{_html(summary.get('reports', ''))}.</footer>"
        f'<script type="application/json" id="mk-data">{_json_for_script(data)[:-1]},"rows":[')
    yield from _joined(table.rows)
    yield '],"values":['
    # The values' arrays, JSON already, join the rest as they are.
    yield from _joined(map(_script_safe, table.values()))
    yield f"]}}</script><script>{_asset('page.js')}</script></body></html>"


def _joined(parts: Iterator[str] | list[str]) -> Iterator[str]:
    """`parts` with a comma between each two (the items of a JSON array), skipping empty ones."""
    comma = ""
    for part in parts:
        if part:
            yield comma + part
            comma = ","



def _known_note(summary: dict[str, Any]) -> str:
    new, known = int(summary.get("problems_new") or 0), int(summary.get("problems_known") or 0)
    if not known:
        return ""
    return (f"New problems come first ({_count(new)} rows), then those reported by earlier runs too "
            f"({_count(known)} rows): a row reported {EVERY_NIGHT} nights or more comes from the DMS every night, "
            "and must be fixed there.")


#: The columns of the results the page reads (a caller holding the whole table hands only these).
PAGE_RESULT_COLUMNS = ["status", "error_code", "error_message", "warnings"]


def write_report_page(out: Path, *, mapping: MappingSpec | None = None, results: pd.DataFrame | None = None) -> Path:
    """Build out/report.html from the reports in `out` (`results`: the table the run holds, if it does, at least
    its PAGE_RESULT_COLUMNS)."""
    reports = read_reports(out, results, mapping)
    path = out / "report.html"
    with private_file(path) as stream:
        for part in page_parts(reports, mapping):
            stream.write(part)
    return path
