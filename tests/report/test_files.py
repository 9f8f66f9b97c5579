"""report.html, errors.xlsx and timeline.csv as files: what they hold, their permissions, `mk-import report`."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

import openpyxl
import pytest

from importer.cli import main
from importer.config import PoolSettings
from importer.error_codes import WARNINGS, ErrorCode, explain, explain_warning
from importer.errors import RetryableError
from importer.report.files import read_timeline, write_timeline
from importer.report.page import verdict
from importer.report.reasons import ReasonParser
from importer.send.client import Reply
from importer.send.pool import Pool
from importer.send.timeline import Second, Timeline
from sample_data.generate import write
from tests.helpers import DV_HEADER, VIN_A, FakeClock, dv_row, read_csv, read_summary
from tests.send.test_pool import ScriptedApi, job
from tests.test_run import run

ROOT = Path(__file__).parents[2]


def test_timeline_counts_each_second_and_fills_the_quiet_ones():
    clock = FakeClock(100.0)
    timeline = Timeline(clock)
    timeline.attempt(100.0, 100.1, "success", False)
    timeline.attempt(100.2, 100.5, "rate_limited", False)
    timeline.attempt(100.5, 100.9, "success", True)
    timeline.attempt(102.0, 102.2, "error", False)
    seconds = timeline.seconds()
    assert [s.second for s in seconds] == [0, 1, 2]
    first = seconds[0]
    assert (first.attempts, first.successes, first.rate_limited, first.retries, first.errors) == (3, 2, 1, 1, 0)
    assert first.latency_p50_ms == pytest.approx(300.0)
    assert first.latency_p95_ms == pytest.approx(400.0)
    assert seconds[1] == Second(1)
    assert seconds[2].errors == 1


def test_timeline_closes_old_seconds_and_survives_a_round_trip(tmp_path: Path):
    clock = FakeClock(100.0)
    timeline = Timeline(clock)
    for n in range(500):
        timeline.attempt(100.0 + n, 100.0 + n + 0.05, "success", n % 7 == 0)
    assert len(timeline._open) <= 121  # latencies are held for the last two minutes only
    seconds = timeline.seconds()
    assert len(seconds) == 500
    assert sum(s.retries for s in seconds) == len(range(0, 500, 7))
    write_timeline(tmp_path / "timeline.csv", seconds)
    assert (tmp_path / "timeline.csv").stat().st_mode & 0o777 == 0o600
    assert read_timeline(tmp_path / "timeline.csv") == seconds
    assert read_timeline(tmp_path / "missing.csv") == []


def test_a_run_keeps_its_timeline_and_the_page_redraws_it(start_sandbox, creds, tmp_path: Path):
    sandbox = start_sandbox(rate_limit=15, fail_rate=0.1, seed=2)
    source = write("cdk", tmp_path / "cdk.csv", 60, seed=3)
    out = tmp_path / "out"
    run(source, sandbox.url, out, "--rate", "200", "--mapping", "cdk")
    summary = read_summary(out)
    seconds = read_timeline(out / "timeline.csv")
    assert sum(s.attempts for s in seconds) == summary["requests_sent"]
    assert sum(s.retries for s in seconds) == summary["retries"]
    assert sum(s.rate_limited for s in seconds) == summary["rate_limited"] > 0
    page = (out / "report.html").read_text()
    # Marked on both charts, requests per second and latency.
    assert page.count('data-mark="answered 429"') == 2 * sum(1 for s in seconds if s.rate_limited)
    for name in ("report.html", "errors.xlsx", "timeline.csv"):
        assert (out / name).stat().st_mode & 0o777 == 0o600

    # `mk-import report` draws the same page again from the reports alone.
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    again = (out / "report.html").read_text()
    written = re.compile(r"Written [0-9-]+ [0-9:]+ UTC")
    assert written.sub("", again) == written.sub("", page)
    assert (out / "report.html").stat().st_mode & 0o777 == 0o600


def test_the_api_refusals_in_the_summary_are_explained_as_refusals(start_sandbox, creds, write_csv, tmp_path: Path):
    sandbox = start_sandbox(fail_rate=1.0, seed=1)  # every request fails: every row RETRIES_EXHAUSTED
    out = tmp_path / "out"
    assert run(write_csv([DV_HEADER, dv_row("1"), dv_row("2")]), sandbox.url, out, "--max-attempts", "1") == 1
    assert [p["column"] for p in read_summary(out)["problems"]] == ["(API)"]
    page = html.unescape((out / "report.html").read_text())
    assert explain("RETRIES_EXHAUSTED").meaning in page
    assert "a field was left out or questioned" not in page  # never read as a warning about a field
    assert "(API): RETRIES_EXHAUSTED" not in page  # nor drawn as a problem of a column


def test_report_of_a_folder_without_reports_is_a_one_line_error(tmp_path: Path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"mk-import: error: {tmp_path}: no summary.json: not a report folder of mk-import"


def _validate(write_csv, tmp_path: Path, rows: list[list[str]]) -> Path:
    source = write_csv([DV_HEADER, *rows])
    out = tmp_path / "out"
    main(["validate", str(source), "--mapping", "dealervault", "--out", str(out)])
    return out


def test_errors_xlsx_keeps_every_cell_as_the_text_it_was(write_csv, tmp_path: Path):
    tricky = dv_row(key="0000082", last="", email="=HYPERLINK(\"http://x\")", cell="+13105551234",
                    home="820000000001", zip_code="02134", vin="@risky", mileage="-12")
    out = _validate(write_csv, tmp_path, [tricky, dv_row(key="0000083", last="Lee", cell="555")])
    assert (out / "errors.xlsx").stat().st_mode & 0o777 == 0o600
    book = openpyxl.load_workbook(out / "errors.xlsx")
    sheet = book.active
    assert sheet.freeze_panes == "A2"
    rows = list(sheet.iter_rows())
    header = [c.value for c in rows[0]]
    assert header[:len(DV_HEADER)] == DV_HEADER
    # The invalid row, then the valid one that would be sent without its unreadable phone.
    codes = [r[header.index("mk_error_code")].value for r in rows[1:]]
    assert codes == ["MISSING_LAST_NAME", "SAVED_WITHOUT_FIELD"]
    cells = dict(zip(header, rows[1], strict=True))
    for column, value in zip(DV_HEADER, tricky, strict=True):
        if value:
            assert cells[column].value == value
            assert cells[column].data_type == "s"  # a string, never a number or a formula
            assert cells[column].number_format == "@"
        # Text, so that a value typed into the column later stays text too.
        index = cells[column].column
        assert any(d.min <= index <= d.max and d.number_format == "@" for d in sheet.column_dimensions.values())
    assert cells["mk_error_code"].value == "MISSING_LAST_NAME"
    fill = cells["mk_error_message"].fill.fgColor.rgb
    assert fill not in (None, "00000000")
    assert fill != cells["City"].fill.fgColor.rgb
    # The cell the reason concerns is marked too.
    assert cells["Last Name"].fill.fgColor.rgb not in (None, "00000000", cells["City"].fill.fgColor.rgb)


def test_the_page_holds_no_fetchable_reference_and_escapes_the_data(write_csv, tmp_path: Path):
    evil = dv_row(key="1", first="<script>alert(1)</script>", last="", city="</script><img src=x>", line1="=1+2")
    out = _validate(write_csv, tmp_path, [evil, dv_row(key="2", vin=VIN_A)])
    page = (out / "report.html").read_text()
    assert "<script>alert(1)" not in page
    assert "<img src=x>" not in page
    data = re.search(r'<script type="application/json" id="mk-data">(.*?)</script>', page, re.S)
    assert data is not None
    assert "<" not in data.group(1)  # the data cannot close its script element
    assert "\\u003cimg src=x\\u003e" in data.group(1)
    assert '"=1+2"' in data.group(1)  # as the file has it, without errors.csv's defusing quote
    markup = page.replace(data.group(0), "")
    assert not re.search(r"\b(src|href|action)\s*=", markup)
    assert not re.search(r"url\(|@import", page)
    assert set(re.findall(r"https?://[^\s\"'<]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in page
    assert "1 of 2 rows are ready to import; 1 needs fixing." in page


def test_every_warning_a_file_can_raise_has_plain_words(write_csv, tmp_path: Path):
    bad = dv_row(key="9", email="not-an-email", cell="12", home="(555) 000", state="Atlantis", zip_code="ABCDE",
                 block_email="perhaps", vin="123", year="19x", make="Ford", mileage="lots")
    incomplete = dv_row(key="10", make="Ford")
    out = _validate(write_csv, tmp_path, [bad, incomplete])
    parser = ReasonParser(DV_HEADER)
    problems = {r.problem for row in read_csv(out / "results.csv") for r in parser.warnings(row["warnings"])}
    assert len(problems) >= 8
    assert problems <= set(WARNINGS)
    # The page explains each of them (both rows are to fix: saved without values the data can fix).
    page = (out / "report.html").read_text()
    for problem in problems:
        assert html.escape(WARNINGS[problem].meaning) in page


def test_reports_page_explains_every_code_and_warning():
    reports = (ROOT / "docs" / "reports.md").read_text()
    for code in ErrorCode:
        assert f"`{code.value}`" in reports
        assert explain(code.value).meaning in reports
    for message, explanation in WARNINGS.items():
        assert message in reports
        assert explanation.meaning in reports
    assert explain_warning("API: 10015 INCORRECT_PHONE_FORMAT").meaning.endswith("+1310xxxxxxx form")


def test_report_help_exists(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "OUT_DIR" in capsys.readouterr().out



@pytest.mark.parametrize(("summary", "sentence", "good"), [
    ({"command": "run", "rows": 2500, "counts": {"success": 2431, "invalid": 61, "failed": 8}},
     "2,431 of 2,500 rows imported; 61 need fixing, 8 failed at the API.", False),
    ({"command": "run", "rows": 3, "counts": {"success": 1, "unchanged": 2}},
     "All 3 rows imported (2 unchanged since the last run, not sent).", True),
    ({"command": "run", "rows": 10, "counts": {"success": 4, "not_attempted": 6},
      "stop_reason": "time budget (--max-duration) reached"},
     "4 of 10 rows imported; 6 not attempted (time budget (--max-duration) reached; rerunning resumes).", False),
    ({"command": "validate", "rows": 5, "counts": {"valid": 5}}, "All 5 rows are ready to import.", True),
    ({"command": "validate", "rows": 5, "counts": {"valid": 4, "invalid": 1}},
     "4 of 5 rows are ready to import; 1 needs fixing.", False),
    ({"command": "validate", "rows": 0, "counts": {}}, "The file has no data rows.", False),
])
def test_the_verdict_says_the_run_in_one_sentence(summary, sentence, good):
    assert verdict(summary) == (sentence, good)


def test_the_pool_reports_every_attempt_to_the_timeline():

    clock = FakeClock()
    timeline = Timeline(clock)
    api = ScriptedApi({"a": [RetryableError("too many requests (HTTP 429)", retry_after=1.0, maybe_saved=False,
                                            throttled=True),
                             RetryableError("server error (HTTP 503)"), Reply(True, "uuid-a", "1")],
                       "b": [Reply(False, error_code="HTTP_400", message="bad")]})

    async def record(j, o) -> None:
        pass

    async def go() -> None:
        pool = Pool(api, PoolSettings(rate=1000, concurrency=2), record, sleep=clock.sleep, clock=clock,
                    on_attempt=timeline.attempt)
        await pool.run([job("a"), job("b")])

    asyncio.run(go())
    seconds = timeline.seconds()
    assert sum(s.attempts for s in seconds) == 4
    assert sum(s.rate_limited for s in seconds) == 1
    assert sum(s.errors for s in seconds) == 1
    assert sum(s.retries for s in seconds) == 1  # the 429 used no attempt: only the send after the 503 retries
    assert sum(s.successes for s in seconds) == 1  # the 400 is an answer, not a success


def test_an_address_refused_for_characters_before_the_at_says_so_everywhere(write_csv, tmp_path: Path):
    accented = dv_row(key="1", email="Zoë.Smith1@example.com")
    malformed = dv_row(key="2", email="zoe smith@example")
    out = _validate(write_csv, tmp_path, [accented, malformed])
    first, second = read_csv(out / "results.csv")
    assert first["warnings"] == "Email 1: characters the API does not accept before the @: 'Zoë.Smith1@example.com'"
    assert second["warnings"] == "Email 1: not a valid email address: 'zoe smith@example'"
    errors = {e["mk_source_row"]: e for e in read_csv(out / "errors.csv")}
    assert errors["1"]["mk_error_message"] == (  # validate: nothing is sent, so it says what a run would do
        "would be sent without Email 1 (characters the API does not accept before the @): correct it and import "
        "this row again to complete the customer")
    assert errors["2"]["mk_error_message"].startswith("would be sent without Email 1 (not a valid email address)")
    parser = ReasonParser(DV_HEADER)
    (reason,) = parser.warnings(first["warnings"])
    assert (reason.column, reason.problem) == ("Email 1", "characters the API does not accept before the @")
    assert "before the @ that the API does not accept" in reason.meaning
    assert "no @" not in reason.meaning, "not told the address is malformed"
    assert "zoë.smith@" in reason.fix
    page = (out / "report.html").read_text()
    assert html.escape(reason.meaning) in page
    assert html.escape(WARNINGS["not a valid email address"].meaning) in page


def test_the_page_explains_a_broken_line_as_what_it_is(write_csv, tmp_path: Path):
    """A line that cannot be split into columns was not saved at all: its words say so, not "the rest of the
    customer was saved"."""
    source = tmp_path / "broken.csv"
    lines = [",".join(dv_row(str(key))) for key in range(1, 201)]  # a broken line among 200 is not refused
    lines[1] = lines[1].replace("Lee", "Lee,extra", 1)
    source.write_text("\n".join([",".join(DV_HEADER), *lines]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    main(["validate", str(source), "--mapping", "dealervault", "--out", str(out)])
    assert read_csv(out / "results.csv")[1]["error_code"] == "MALFORMED_LINE"
    page = (out / "report.html").read_text()
    words = page[page.index('<table class="words">'):]
    assert html.escape(explain("MALFORMED_LINE").meaning) in words
    assert "the rest of the customer was saved" not in page
