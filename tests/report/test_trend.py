"""The department's recent runs: kept beside the state (the last 30), shared with the metrics, drawn as charts."""

from __future__ import annotations

import json
from pathlib import Path

from importer.ops.metrics import History
from importer.report.trend import CHARTS, KEEP, recent, remember, run_record, runs_path, trend_section


def _summary(i: int) -> dict[str, object]:
    return {"reports": f"/r/{i}", "rows": 100 + i, "counts": {"success": 3, "unchanged": 90 + i, "failed": i % 2},
            "changes": {"created": 1, "phones": 2, "name": 0}, "requests_sent": 4, "rate_limited": 1,
            "duration_s": 12.5, "problems_new": 1, "problems_known": 2, "exit_code": 0, "stop_code": None}


def test_the_last_30_runs_are_kept(tmp_path: Path):
    state = tmp_path / "d.sqlite"
    for i in range(KEEP + 5):
        remember(state, run_record(_summary(i), saved=3))
    runs = recent(state)
    assert len(runs) == KEEP
    assert runs[0]["rows"] == 105
    record = runs[-1]
    assert (record["created"], record["updated"], record["to_fix"], record["share_429"]) == (1, 2, 3, 25.0)
    assert record["changes"] == {"created": 1, "phones": 2}
    assert runs_path(state).stat().st_mode & 0o777 == 0o600


def test_a_page_rebuilt_later_shows_the_runs_up_to_its_own(tmp_path: Path):
    state = tmp_path / "d.sqlite"
    for i in range(5):
        remember(state, run_record(_summary(i), saved=3))
    assert [r["reports"] for r in recent(state, "/r/2")] == ["/r/0", "/r/1", "/r/2"]
    assert len(recent(state, "/elsewhere")) == 5


def test_the_metrics_memory_and_the_runs_share_one_file(tmp_path: Path):
    state = tmp_path / "d.sqlite"
    remember(state, run_record(_summary(0), saved=3))
    History(last_success=123.0, out_of_time_in_a_row=0).save(runs_path(state))
    remember(state, run_record(_summary(1), saved=3))
    data = json.loads(runs_path(state).read_text())
    assert data["last_success"] == 123.0
    assert len(data["runs"]) == 2
    assert History.load(runs_path(state)).last_success == 123.0


def test_an_unreadable_file_starts_again(tmp_path: Path):
    state = tmp_path / "d.sqlite"
    runs_path(state).write_text("{not json")
    assert recent(state) == []
    remember(state, run_record(_summary(0), saved=3))
    assert len(recent(state)) == 1


def test_charts_one_per_figure_with_a_point_per_run(tmp_path: Path):
    runs = [run_record(_summary(i), saved=3) for i in range(4)]
    html = trend_section(runs)
    assert html.count("<figure") == len(CHARTS)
    assert html.count("<circle") == len(CHARTS) * 4
    assert "from the second run" in trend_section(runs[:1])
