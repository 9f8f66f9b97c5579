"""The department's recent runs: each run's figures kept beside the state (`<state>.runs.json`, which the
metrics share), and drawn on the page as small charts of the last 30."""

from __future__ import annotations

import datetime
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from importer.report.folders import private_file

#: Runs the file keeps and the page draws.
KEEP = 30
#: (figure, what the page calls it, its unit) for each small chart.
CHARTS = (("rows", "rows", ""), ("to_fix", "rows to fix", ""), ("created", "customers created", ""),
          ("updated", "customers updated", ""), ("unchanged", "rows unchanged", ""), ("failed", "rows failed", ""),
          ("duration_s", "duration", "s"), ("share_429", "answers 429", "%"))


def runs_path(state: Path) -> Path:
    """Where a department's runs are remembered: beside its state file."""
    return state.with_name(state.name + ".runs.json")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: the next run starts it again
    return data if isinstance(data, dict) else {}


def update(path: Path, **values: Any) -> None:
    """Set some keys of the file, keeping the others (the runs, and what the metrics remember)."""
    data = _read(path)
    data.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    with private_file(path) as stream:
        json.dump(data, stream, indent=1)
        stream.write("\n")


def read(path: Path) -> dict[str, Any]:
    """The whole file ({} when there is none)."""
    return _read(path)


def run_record(summary: Mapping[str, Any], saved: int) -> dict[str, Any]:
    """What the trend keeps of a run, from its summary; `saved`: customers the run saved."""
    counts: Mapping[str, int] = summary.get("counts") or {}
    changes: Mapping[str, int] = summary.get("changes") or {}
    requests = int(summary.get("requests_sent") or 0)
    return {
        "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "reports": summary.get("reports"),
        "rows": int(summary.get("rows") or 0),
        "to_fix": int(summary.get("problems_new") or 0) + int(summary.get("problems_known") or 0),
        "created": int(changes.get("created", 0)),
        "updated": max(0, saved - int(changes.get("created", 0))),
        "unchanged": int(counts.get("unchanged", 0)),
        "failed": int(counts.get("failed", 0)),
        "duration_s": float(summary.get("duration_s") or 0.0),
        "share_429": round(100 * int(summary.get("rate_limited") or 0) / requests, 2) if requests else 0.0,
        "changes": {word: int(n) for word, n in changes.items() if n},
        "problems_new": int(summary.get("problems_new") or 0),
        "problems_known": int(summary.get("problems_known") or 0),
        "exit_code": summary.get("exit_code"),
        "stop_code": summary.get("stop_code"),
    }


def remember(state: Path, record: Mapping[str, Any]) -> None:
    """Add a run to the department's last KEEP."""
    path = runs_path(state)
    runs = [r for r in _read(path).get("runs", []) if isinstance(r, dict)]
    update(path, runs=[*runs, dict(record)][-KEEP:])


def recent(state: Path, reports: str | None = None) -> list[dict[str, Any]]:
    """The department's last KEEP runs, oldest first; up to the run whose reports are in `reports`, if that
    run is among them (a page rebuilt later shows the runs before it, not those after)."""
    runs = [r for r in _read(runs_path(state)).get("runs", []) if isinstance(r, dict)]
    ends = [i for i, r in enumerate(runs) if reports is not None and r.get("reports") == reports]
    return runs[:ends[-1] + 1] if ends else runs


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _value(run: Mapping[str, Any], figure: str) -> float:
    try:
        return float(run.get(figure) or 0)
    except (TypeError, ValueError):
        return 0.0


def _chart(runs: Sequence[Mapping[str, Any]], figure: str, title: str, unit: str) -> str:
    width, height, pad = 220, 64, 4
    values = [_value(r, figure) for r in runs]
    top = max(values) or 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)

    def y(value: float) -> float:
        return height - pad - (height - 2 * pad) * value / top

    points = " ".join(f"{pad + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    dots = "".join(f'<circle cx="{pad + i * step:.1f}" cy="{y(v):.1f}" r="2.5" fill="#0969da">'
                   f'<title>{_e(str(r.get("at", ""))[:16].replace("T", " "))}: {v:,g}{_e(unit)}</title></circle>'
                   for i, (r, v) in enumerate(zip(runs, values, strict=True)))
    last = values[-1]
    return (f'<figure data-figure="{_e(figure)}"><figcaption>{_e(title)}: <b>{last:,g}{_e(unit)}</b> last run'
            f'</figcaption><svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}"><title>{_e(title)}, last {len(values)} runs</title>'
            f'<line x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}" stroke="#d1d9e0"/>'
            f'<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="{points}"/>{dots}</svg></figure>')


def trend_section(runs: Sequence[Mapping[str, Any]]) -> str:
    """Small charts of the department's recent runs, oldest on the left."""
    if len(runs) < 2:
        return '<p class="note">The trend shows from the second run with this state file on.</p>'
    charts = "".join(_chart(runs, figure, title, unit) for figure, title, unit in CHARTS)
    return (f'<p class="note">The department\'s last {len(runs)} runs, oldest on the left (hover a point for its '
            f'run).</p><div class="trend" id="trend">{charts}</div>')
