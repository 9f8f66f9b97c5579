"""Hostile and careless inputs: each ends in a clear one-line error or a clean row-level result, never a
traceback, never garbled or leaked data. Real files, the real CLI, real loopback servers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from importer.cli import main
from importer.errors import ConfigError
from importer.send.client import check_api_url
from tests.conftest import DEPARTMENT, PASSWORD, USER, Api
from tests.helpers import DV_HEADER, dv_row, read_csv, read_jsonl, read_summary


def run(path: Path, url: str, out: Path, *extra: str, mapping: str = "dealervault",
        department: str = DEPARTMENT) -> int:
    return main(["run", str(path), "--mapping", mapping, "--department-uuid", department, "--api-url", url,
                 "--out", str(out), "--state", str(out.parent / "state.sqlite"), "--progress", "none", *extra])


def cli(*args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MK_USERNAME": USER, "MK_PASSWORD": PASSWORD}
    done = subprocess.run([sys.executable, "-m", "importer", *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, env=env, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    return done


# -- 1: one Windows-1252 line in a UTF-8 export --------------------------------------------------------
def test_a_windows_1252_line_does_not_garble_the_utf8_names(tmp_path: Path):
    lines = [",".join(DV_HEADER)] + [",".join(dv_row(str(i), first=f"Jos\u00e9{i}", last="Pe\u00f1a"))
                                     for i in range(1, 6)]
    data = "\n".join(lines[:3]).encode() + b"\n" + ",".join(dv_row("9", first="Ren\u00e9e")).encode("cp1252") + \
        b"\n" + "\n".join(lines[3:]).encode() + b"\n"
    source = tmp_path / "mixed.csv"
    source.write_bytes(data)
    payloads = tmp_path / "p.jsonl"
    assert main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "o"),
                 "--payloads", str(payloads)]) == 0
    names = {p["customer"]["customerKey"]: p["customer"]["firstName"] for p in read_jsonl(payloads)}
    assert names["1"] == "Jos\u00e91"
    assert names["9"] == "Ren\u00e9e"
    assert read_summary(tmp_path / "o")["input"]["encoding"] == "utf-8+cp1252"


# -- 2, 5: the API URL ------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://127.attacker.example", "http://127.0.0.1.nip.io:8080",
                                 "http://localhost.attacker.example", "http://0x7f.example"])
def test_plain_http_to_a_name_that_merely_looks_like_loopback_is_refused(url):
    with pytest.raises(ConfigError, match="plain http"):
        check_api_url(url, insecure_http=False)


@pytest.mark.parametrize("url", ["http://[::1", "http://host:99999", "https://", "ftp://127.0.0.1"])
def test_a_malformed_api_url_is_a_config_error(url):
    with pytest.raises(ConfigError, match="expected https://host"):
        check_api_url(url, insecure_http=True)
    with pytest.raises(ConfigError, match="user name or password") as caught:
        check_api_url(url.replace("//", "//me:pa55word@", 1), insecure_http=True)
    assert "pa55word" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.2:8080", "http://[::1]:8080", "http://localhost:1"])
def test_plain_http_to_loopback_addresses_is_allowed(url):
    assert check_api_url(url, insecure_http=False) == url


def test_a_url_with_credentials_is_refused_without_echoing_them(sandbox, creds, write_csv, tmp_path: Path, capsys):
    url = sandbox.url.replace("http://", f"http://{USER}:hunter2-secret@")
    assert run(write_csv([DV_HEADER, dv_row("1")]), url, tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "user name or password" in err
    assert "hunter2" not in err
    assert Api(sandbox.url).stats()["requests"] == 0


# -- 4: the department is one path segment -----------------------------------------------------------------
@pytest.mark.parametrize("department", ["..", ".", "a/b", "%2e%2e", "dept 1"])
def test_a_department_that_is_not_a_token_is_refused(department, sandbox, creds, write_csv, tmp_path: Path, capsys):
    assert run(write_csv([DV_HEADER, dv_row("1")]), sandbox.url, tmp_path / "o", department=department) == 2
    assert "expected a department UUID" in capsys.readouterr().err
    assert Api(sandbox.url).stats()["requests"] == 0


# -- 6: a YAML alias bomb ----------------------------------------------------------------------------------
def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path):
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("name: x\ncustomer: {lastName: Last Name}\nvalues:\n" +
                    "".join(f"  {line}\n" for line in levels) + "placeholders: *i\n")
    # A memory cap, so the unprotected loader dies of MemoryError instead of taking the machine down.
    done = subprocess.run([sys.executable, "-c",
                           "import resource, sys; resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30)); "
                           "from importer.cli import main; sys.exit(main(sys.argv[1:]))",
                           "mappings", "show", str(bomb)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-500:]
    assert "more than 50 YAML aliases" in done.stderr
    assert str(bomb) in done.stderr


def test_deeply_nested_yaml_is_refused(tmp_path: Path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: x\nplaceholders: " + "[" * 20000 + "]" * 20000 + "\n")
    done = cli("mappings", "show", str(deep))
    assert done.returncode == 2
    assert "nested more than 20 levels deep" in done.stderr


# -- 7: damaged state files --------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["pages", "schema_version"])
def test_a_damaged_state_is_refused_with_exit_2_naming_the_file(damage, sandbox, creds, write_csv, tmp_path: Path,
                                                                capsys):
    source = write_csv([DV_HEADER, *(dv_row(str(i), first="A" * 60, last=f"L{i}") for i in range(400))])
    state = tmp_path / "state.sqlite"
    assert run(source, sandbox.url, tmp_path / "a") == 0
    if damage == "pages":
        with state.open("r+b") as db:
            db.seek(4096 * 3)
            db.write(b"\xde\xad" * 4096)
    else:
        with sqlite3.connect(state) as db:
            db.execute("UPDATE meta SET value = 'one' WHERE name = 'schema_version'")
    before = Api(sandbox.url).stats()["requests"]
    assert run(source, sandbox.url, tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert str(state) in err
    assert "not a usable mk-import state file" in err
    assert Api(sandbox.url).stats()["requests"] == before


# -- 9: reports never overwrite the input -------------------------------------------------------------------
def test_reimporting_errors_csv_into_its_own_folder_is_refused(sandbox, creds, write_csv, tmp_path: Path, capsys):
    out = tmp_path / "o"
    assert run(write_csv([DV_HEADER, dv_row("1"), dv_row("2", last="")]), sandbox.url, out) == 1
    errors = out / "errors.csv"
    content = errors.read_bytes()
    assert run(errors, sandbox.url, out) == 2
    assert "--out" in capsys.readouterr().err
    assert errors.read_bytes() == content


def test_payloads_onto_the_input_is_refused(write_csv, tmp_path: Path, capsys):
    source = write_csv([DV_HEADER, dv_row("1")])
    content = source.read_bytes()
    assert main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "o"),
                 "--payloads", str(source)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert source.read_bytes() == content


# -- 10: results.csv is safe to open in a spreadsheet -------------------------------------------------------
def test_results_csv_defuses_formulas(tmp_path: Path, write_csv):
    source = write_csv([DV_HEADER, dv_row("=1+2"), dv_row("@SUM(A1)", cell="=HYPERLINK(\"x\")")])
    out = tmp_path / "o"
    main(["validate", str(source), "-m", "dealervault", "--out", str(out)])
    results = read_csv(out / "results.csv")
    assert [r["customer_key"] for r in results] == ["'=1+2", "'@SUM(A1)"]
    assert all(not r["warnings"].startswith(("=", "+", "-", "@")) for r in results)


# -- 12: the input changes during the run ------------------------------------------------------------------
def test_errors_csv_keeps_the_rows_read_at_the_start(start_sandbox, creds, write_csv, tmp_path: Path, monkeypatch):
    sandbox = start_sandbox(fail_rate=1.0, seed=1)  # every request fails: every row goes to errors.csv
    rows = [dv_row(str(i), first=f"First{i}", last=f"Last{i}") for i in range(1, 6)]
    source = write_csv([DV_HEADER, *rows])
    import importer.pipeline
    from importer.report.outcomes import with_outcomes as original

    def apply_after_the_file_changed(*args):  # the export is replaced mid-run
        source.write_text("\n".join(",".join(r) for r in [DV_HEADER, *(dv_row(str(i), first="Stranger", last="X")
                                                                          for i in range(1, 6))]) + "\n")
        return original(*args)

    monkeypatch.setattr(importer.pipeline, "with_outcomes", apply_after_the_file_changed)
    out = tmp_path / "o"
    assert run(source, sandbox.url, out, "--max-attempts", "1") == 1
    errors = read_csv(out / "errors.csv")
    assert [(e["Customer Number"], e["First Name "]) for e in errors] == [(str(i), f"First{i}") for i in range(1, 6)]
    assert read_summary(out)["input_changed"] is True


# -- 13 and issue 15's broken line: a line that does not fit the header is that row's problem ----------------
def test_one_broken_line_in_a_real_sized_export_imports_every_other_row(sandbox, creds, tmp_path: Path):
    lines = [",".join(DV_HEADER)] + [",".join(dv_row(str(i), first=f"F{i}", last=f"L{i}", city="Springfield"))
                                     for i in range(1, 301)]
    broken = ",".join(dv_row("150", first="F150", last="Smith, Jr", city="Springfield"))  # unquoted comma
    lines[150] = broken  # physical line 151, data row 150
    lines[200] = "200,F200"  # a line cut short: physical line 201, data row 200
    source = tmp_path / "export.csv"
    source.write_text("\r\n".join(lines) + "\r\n")
    out = tmp_path / "o"
    assert run(source, sandbox.url, out, "--rate", "1000") == 1
    results = read_csv(out / "results.csv")
    assert len(results) == 300
    by_row = {int(r["source_row"]): r for r in results}
    assert {by_row[150]["status"], by_row[200]["status"]} == {"invalid"}
    assert by_row[150]["error_code"] == "MALFORMED_LINE"
    assert "data row 150 has 18 fields, the header 17 (line 151)" in by_row[150]["error_message"]
    assert "data row 200 has 2 fields, the header 17 (line 201)" in by_row[200]["error_message"]
    assert {r["status"] for n, r in by_row.items() if n not in (150, 200)} == {"success"}
    assert Api(sandbox.url).stats()["customers"] == 298
    errors = read_csv(out / "errors.csv")
    assert [(e["mk_source_row"], e["mk_raw_line"]) for e in errors] == [("150", broken), ("200", "200,F200")]
    problems = read_summary(out)["problems"]
    assert [(p["column"], p["rows"], p["example_row"]) for p in problems] == [("(line)", 2, 150)]


def test_a_short_row_is_not_counted_valid(write_csv, tmp_path: Path):
    source = tmp_path / "short.csv"
    source.write_text(",".join(DV_HEADER) + "\n" + "".join(",".join(dv_row(str(i))) + "\n" for i in range(120)) +
                      "7,Ann,Lee\n")
    out = tmp_path / "o"
    assert main(["validate", str(source), "-m", "dealervault", "--out", str(out)]) == 1
    assert read_csv(out / "results.csv")[-1]["error_code"] == "MALFORMED_LINE"


def test_a_20_mb_field_is_never_sent(tmp_path: Path):
    source = tmp_path / "big.csv"
    source.write_text(",".join(DV_HEADER) + "\n" + ",".join(dv_row("1", first="F" * (20 << 20))) + "\n" +
                      "".join(",".join(dv_row(str(i))) + "\n" for i in range(2, 200)))
    payloads = tmp_path / "p.jsonl"
    assert main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "o"),
                 "--payloads", str(payloads)]) == 1
    assert payloads.stat().st_size < 100_000
    first = read_csv(tmp_path / "o" / "results.csv")[0]
    assert (first["status"], first["error_code"]) == ("invalid", "FIELD_TOO_LONG")


# -- issue 15, finding 4: empty and truncated exports --------------------------------------------------------
def test_a_header_only_export_is_refused_unless_allowed(sandbox, creds, write_csv, tmp_path: Path, capsys):
    source = write_csv([DV_HEADER])
    assert run(source, sandbox.url, tmp_path / "a") == 2
    assert "empty export" in capsys.readouterr().err
    assert main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "b")]) == 2
    assert run(source, sandbox.url, tmp_path / "c", "--allow-empty") == 0
    assert read_summary(tmp_path / "c")["rows"] == 0
    assert Api(sandbox.url).stats()["requests"] == 0


def test_min_rows_refuses_a_truncated_export_before_sending(sandbox, creds, write_csv, tmp_path: Path, capsys):
    source = write_csv([DV_HEADER, *(dv_row(str(i)) for i in range(10))])
    assert run(source, sandbox.url, tmp_path / "a", "--min-rows", "11") == 2
    assert "10 data rows, fewer than --min-rows 11" in capsys.readouterr().err
    assert Api(sandbox.url).stats()["requests"] == 0
    assert run(source, sandbox.url, tmp_path / "b", "--min-rows", "10") == 0


def test_a_broken_line_fixed_in_errors_csv_imports_again(tmp_path: Path):
    lines = [",".join(DV_HEADER)] + [",".join(dv_row(str(i), last=f"L{i}")) for i in range(1, 201)]
    lines[50] = ",".join(dv_row("50", last="Smith, Jr"))
    lines[60] = ",".join(dv_row("60", last="Doe, Sr"))
    source = tmp_path / "export.csv"
    source.write_text("\n".join(lines) + "\n")
    first = tmp_path / "first"
    assert main(["validate", str(source), "-m", "dealervault", "--out", str(first)]) == 1
    errors = read_csv(first / "errors.csv")
    assert [e["mk_error_code"] for e in errors] == ["MALFORMED_LINE", "MALFORMED_LINE"]
    errors[0]["mk_raw_line"] = errors[0]["mk_raw_line"].replace("Smith, Jr", '"Smith, Jr"')  # fixed; the other not
    fixed = tmp_path / "fixed.csv"
    with fixed.open("w", encoding="utf-8", newline="") as stream:
        import csv

        writer = csv.DictWriter(stream, fieldnames=list(errors[0]))
        writer.writeheader()
        writer.writerows(errors)
    payloads = tmp_path / "p.jsonl"
    assert main(["validate", str(fixed), "-m", "dealervault", "--out", str(tmp_path / "second"),
                 "--payloads", str(payloads)]) == 1
    assert [p["customer"]["lastName"] for p in read_jsonl(payloads)] == ["Smith, Jr"]
    again = read_csv(tmp_path / "second" / "results.csv")
    assert [(r["status"], r["error_code"]) for r in again] == [("valid", ""), ("invalid", "MALFORMED_LINE")]


def test_a_binary_credentials_file_is_a_config_error(write_csv, tmp_path: Path, monkeypatch, capsys):
    secret = tmp_path / "creds"
    secret.write_bytes(b"\xff\xfe\x00binary")
    secret.chmod(0o600)
    source = write_csv([DV_HEADER, dv_row("1")])
    assert run(source, "http://127.0.0.1:9", tmp_path / "o", "--credentials-file", str(secret)) == 2
    assert "not UTF-8 text" in capsys.readouterr().err
