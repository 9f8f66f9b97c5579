"""Headers as spreadsheets write them (empty names, blank lines above, odd spacing): every command reads
them, or refuses them in one line with exit 2; none ends in a traceback. The real CLI, the real sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from importer.cli import main
from tests.conftest import DEPARTMENT
from tests.helpers import read_csv, read_jsonl, read_summary

MAPPING = "name: odd\ncustomer_key: CustNo\ncustomer: {firstName: FirstName, lastName: LastName}\n" \
          "phones: [{column: CellPhone, label: cell}]\n"
ROWS = "1,Ann,Lee,2025550143\n2,Bob,Ray,2025550187\n"

#: name → (file bytes, whether every command reads it)
ODD = {
    "trailing empty names": (b"CustNo,FirstName,LastName,CellPhone,,\n1,Ann,Lee,2025550143,,\n"
                             b"2,Bob,Ray,2025550187,,\n", True),
    "an empty name between": (b"CustNo,,FirstName,LastName,CellPhone\n1,,Ann,Lee,2025550143\n"
                              b"2,,Bob,Ray,2025550187\n", True),
    "names of spaces": (b"CustNo,FirstName,LastName,CellPhone,  ,\t\n1,Ann,Lee,2025550143,,\n"
                        b"2,Bob,Ray,2025550187,,\n", True),
    "blank lines above": (b"\n\r\n   \n" + b"CustNo,FirstName,LastName,CellPhone\n" + ROWS.encode(), True),
    "empty rows above, as Excel saves them": (b",,,\r\n,,,\r\nCustNo,FirstName,LastName,CellPhone\r\n" +
                                             ROWS.replace("\n", "\r\n").encode(), True),
    "a BOM, a blank line, empty names, semicolons": (
        "\ufeff\nCustNo;FirstName;LastName;CellPhone;;\n1;Ann;Lee;2025550143;;\n2;Bob;Ray;2025550187;;\n"
        .encode(), True),
    "a name that clashes with an unnamed column": (b"CustNo,FirstName,,column 3,LastName,CellPhone\n", False),
    "duplicate names": (b"CustNo,FirstName,LastName,CellPhone,cellphone\n1,Ann,Lee,2025550143,x\n", False),
    "nothing but empty rows": (b",,,\n,,,\n\n", False),
}


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "odd.yaml"
    path.write_text(MAPPING)
    return path


@pytest.mark.parametrize("case", list(ODD))
def test_every_command_reads_an_odd_header_or_refuses_it_in_one_line(case, mapping, sandbox, creds, tmp_path: Path,
                                                                     capsys):
    data, readable = ODD[case]
    source = tmp_path / "odd.csv"
    source.write_bytes(data)
    expected = 0 if readable else 2
    commands = {
        "validate": ["validate", str(source), "-m", str(mapping), "--out", str(tmp_path / "v"),
                     "--payloads", str(tmp_path / "p.jsonl")],
        "run": ["run", str(source), "-m", str(mapping), "--department-uuid", DEPARTMENT, "--api-url", sandbox.url,
                "--out", str(tmp_path / "r"), "--state", str(tmp_path / "s.sqlite"), "--progress", "none"],
        "mappings check": ["mappings", "check", str(source), "-m", str(mapping)],
        "mappings suggest": ["mappings", "suggest", str(source), "--out", str(tmp_path / "suggested.yaml")],
    }
    for command, argv in commands.items():
        capsys.readouterr()
        assert main(argv) == expected, (command, capsys.readouterr())
        err = capsys.readouterr().err
        if not readable:
            assert len(err.strip().splitlines()) == 1, (command, err)
            assert str(source) in err
    if not readable:
        return
    customers = {p["customer"]["customerKey"]: p["customer"] for p in read_jsonl(tmp_path / "p.jsonl")}
    assert customers["1"]["firstName"] == "Ann"
    assert customers["2"]["lastName"] == "Ray"
    results = read_csv(tmp_path / "r" / "results.csv")
    assert [r["source_row"] for r in results][:2] == ["1", "2"]
    assert read_summary(tmp_path / "r")["rows"] == len(results)
    suggested = (tmp_path / "suggested.yaml").read_text()
    assert "column: CellPhone" in suggested
    assert "lastName: LastName" in suggested
    assert "'column " not in suggested  # an empty leftover column is no column to place


def test_an_unnamed_column_is_called_by_its_place_and_can_be_mapped(tmp_path: Path, capsys):
    source = tmp_path / "odd.csv"
    source.write_bytes(b"CustNo,FirstName,LastName,\n1,Ann,Lee,2025550143\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(MAPPING.replace("CellPhone", "column 4"))
    assert main(["mappings", "check", str(source), "-m", str(mapping)]) == 0
    assert "unmapped" not in capsys.readouterr().out
    payloads = tmp_path / "p.jsonl"
    assert main(["validate", str(source), "-m", str(mapping), "--out", str(tmp_path / "v"),
                 "--payloads", str(payloads)]) == 0
    assert read_jsonl(payloads)[0]["customer"]["phoneNumbers"][0]["phoneNumber"].endswith("2025550143")


def test_blank_lines_above_the_header_keep_the_line_numbers_of_the_file(write_csv, tmp_path: Path):
    source = tmp_path / "odd.csv"
    source.write_bytes(b"\n\nCustNo,FirstName,LastName,CellPhone\n1,Ann,Lee,2025550143\n2,Bob,Ray,x,y\n" +
                       b"".join(f"{i},N{i},L{i},\n".encode() for i in range(3, 200)))
    mapping = tmp_path / "m.yaml"
    mapping.write_text(MAPPING)
    assert main(["validate", str(source), "-m", str(mapping), "--out", str(tmp_path / "v")]) in (0, 1)
    broken = [r for r in read_csv(tmp_path / "v" / "errors.csv") if r["mk_error_code"] == "MALFORMED_LINE"]
    assert broken
    assert "line 5" in broken[0]["mk_error_message"]
