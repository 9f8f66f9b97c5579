"""Reader: encodings, delimiters, quoting, row numbers, and refusal of unreadable files."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd
import pytest

from importer.errors import InputError
from importer.read.reader import MAX_FIELD_CHARS, BadLine, open_input, read_chunks

ROWS = [["Customer Number", " First Name ", "Zip"], ["007", "José", "02134"], ["008", 'Ann "Annie"', "0"],
        ["009", "multi\nline, with comma", ""]]


def read_all(path: str, chunk_rows: int = 100) -> pd.DataFrame:
    with open_input(path) as source:
        return pd.concat(list(read_chunks(source, chunk_rows)))


@pytest.mark.parametrize(("encoding", "delimiter"), [
    ("utf-8", ","), ("utf-8-sig", ","), ("cp1252", ","), ("utf-16", "\t"), ("utf-8", "|"), ("utf-8", ";"),
])
def test_encodings_and_delimiters(write_csv, encoding, delimiter):
    path = write_csv(ROWS, encoding=encoding, delimiter=delimiter)
    frame = read_all(str(path))
    assert list(frame.columns) == ["Customer Number", " First Name ", "Zip"]
    assert frame.loc[1, " First Name "] == "José"
    assert frame.loc[2, " First Name "] == 'Ann "Annie"'
    assert frame.loc[3, " First Name "] == "multi\nline, with comma"
    assert list(frame["Customer Number"]) == ["007", "008", "009"]  # text: leading zeros kept
    assert list(frame.index) == [1, 2, 3]


def test_values_are_pyarrow_backed_strings(write_csv):
    frame = read_all(str(write_csv(ROWS)))
    assert all(str(dtype) == "str" for dtype in frame.dtypes)
    assert frame["Zip"].array.__class__.__name__.startswith("Arrow")


def test_row_numbers_continue_across_chunks_and_skip_blank_lines(tmp_path: Path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,x\n\n2,y\n3,z\n4,w\n5,v\n")
    frame = read_all(str(path), chunk_rows=2)
    assert list(frame.index) == [1, 2, 3, 4, 5]
    assert list(frame["a"]) == ["1", "2", "3", "4", "5"]


def test_a_short_row_is_flagged_not_padded_silently(tmp_path: Path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n" + "".join(f"{i},x,y\n" for i in range(1, 150)) + "150\n")
    bad: list[BadLine] = []
    with open_input(str(path)) as source:
        frame = pd.concat(list(read_chunks(source, 100, bad)))
    assert list(frame.loc[150]) == ["", "", ""]
    assert [(b.row, b.code, b.raw) for b in bad] == [(150, "MALFORMED_LINE", "150")]
    assert "data row 150 has 1 fields, the header 3 (line 151)" in bad[0].message


def test_standard_input_is_read(monkeypatch, tmp_path: Path):
    data = "a,b\r\n1,2\r\n".encode("utf-16")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    with open_input("-") as source:
        assert source.encoding == "utf-16"
        frame = pd.concat(list(read_chunks(source)))
    assert list(frame["b"]) == ["2"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"),
    (b"  \r\n", "the file is empty"),
    (b"a,b\n1,\x00\x01\x02\n", "not a text file"),
    (b"a,b\n1,\"unclosed\n2,3\n", "broken CSV"),
    (b"a,b\n1,2\n3,4,5\n", "broken CSV"),
    (b"a,b\n1,2,3\n", "data row 1 has 3 fields"),
    (b"Zip,name, zip \n1,2,3\n", "duplicate column 'zip' (columns 1 and 3)"),
    (b"a,b\n\x81\x8d\x8f\xff\xfe,1\n", "not readable"),
])
def test_unreadable_files_are_refused(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        read_all(str(path))
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_missing_file_is_refused(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        read_all(str(tmp_path / "nope.csv"))


def test_a_short_row_midway_hands_over_to_pandas_without_losing_or_repeating_rows(tmp_path: Path, monkeypatch):
    import importer.read.reader

    monkeypatch.setattr(importer.read.reader, "ARROW_BLOCK_BYTES", 256)  # many small chunks on the fast path
    lines = ["a,b,c"] + [f"{i},x{i},y{i}" for i in range(1, 301)]
    lines[250] = "250,short"  # too few fields: pyarrow refuses, the line reader flags it
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines) + "\n")
    bad: list[BadLine] = []
    with open_input(str(path)) as source:
        frame = pd.concat(list(read_chunks(source, 40, bad)))
    assert list(frame.index) == list(range(1, 301))
    assert list(frame["a"]) == [str(i) if i != 250 else "" for i in range(1, 301)]
    assert [b.row for b in bad] == [250]


def test_one_windows_1252_line_in_a_utf8_file_garbles_nothing(tmp_path: Path, caplog):
    path = tmp_path / "mixed.csv"
    path.write_bytes("key,name\n1,José\n2,Zoë\n".encode() + "3,Renée\n".encode("cp1252") + b"4,Ann\n")
    frame = read_all(str(path))
    assert list(frame["name"]) == ["José", "Zoë", "Renée", "Ann"]
    assert "1 line(s) are not UTF-8 and were read as Windows-1252 (line 4)" in caplog.text
    with open_input(str(path)) as source:
        assert source.encoding == "utf-8+cp1252"


def test_a_plain_windows_1252_file_is_read_as_such(tmp_path: Path, caplog):
    path = tmp_path / "legacy.csv"
    path.write_bytes("key,name\n1,José\n2,Renée\n".encode("cp1252"))
    with open_input(str(path)) as source:
        assert source.encoding == "cp1252"
    assert list(read_all(str(path))["name"]) == ["José", "Renée"]
    assert "Windows-1252" not in caplog.text


def test_a_header_over_64_kib_is_read_whole(tmp_path: Path):
    filler = [f"Unused column number {i:05d}" for i in range(3000)]
    path = tmp_path / "wide.csv"
    path.write_text(",".join([*filler, "Last Name"]) + "\n" + ",".join([*([""] * 3000), "Lee"]) + "\n")
    assert path.stat().st_size > 64 * 1024
    frame = read_all(str(path))
    assert list(frame["Last Name"]) == ["Lee"]


def test_a_header_over_the_limit_is_refused_not_cut(tmp_path: Path):
    path = tmp_path / "huge.csv"
    path.write_text(",".join(f"c{i:07d}" for i in range(200_000)) + "\n1\n")
    with pytest.raises(InputError, match="the header row is longer than"):
        read_all(str(path))


def test_a_20_mb_field_is_dropped_and_its_row_flagged(tmp_path: Path):
    path = tmp_path / "big.csv"
    rows = [f"{i},Ann,Lee" for i in range(1, 201)]
    rows[99] = "100," + "A" * (20 << 20) + ",Lee"
    path.write_text("key,first,last\n" + "\n".join(rows) + "\n")
    bad: list[BadLine] = []
    with open_input(str(path)) as source:
        frame = pd.concat(list(read_chunks(source, 1000, bad)))
    assert len(frame) == 200
    assert frame.loc[100, "first"] == ""
    assert frame["first"].str.len().max() <= MAX_FIELD_CHARS
    assert [(b.row, b.code) for b in bad] == [(100, "FIELD_TOO_LONG")]
    assert "first holds 20,971,520 characters" in bad[0].message


def test_one_broken_line_in_a_long_file_is_that_rows_problem(tmp_path: Path):
    lines = ["key,first,last,city"] + [f"{i},F{i},L{i},Town" for i in range(1, 301)]
    lines[151] = '151,F151,Smith, Jr,Town'  # an unquoted comma: 5 fields for 4
    lines.insert(10, '9b,"multi\nline",L,Town')  # a quoted line break shifts physical lines by one
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines) + "\n")
    bad: list[BadLine] = []
    with open_input(str(path)) as source:
        frame = pd.concat(list(read_chunks(source, 50, bad)))
    assert len(frame) == 301
    assert [(b.row, b.code, b.raw) for b in bad] == [(152, "MALFORMED_LINE", "151,F151,Smith, Jr,Town")]
    assert "data row 152 has 5 fields, the header 4 (line 154)" in bad[0].message
    assert frame.loc[153, "key"] == "152"


def test_a_file_with_many_broken_lines_is_refused(tmp_path: Path):
    lines = ["a,b"] + [f"{i},x" for i in range(1, 101)]
    lines[40] = "40,x,y"
    lines[41] = "41,x,y"
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"broken CSV: 2 of 100 data rows .*data row 40 has 3 fields"):
        read_all(str(path))


def test_closed_standard_input_is_a_clear_error(tmp_path: Path):
    import subprocess

    done = subprocess.run(["bash", "-c", f"{sys.executable} -m importer validate - -m cdk --out {tmp_path} <&-"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "standard input is closed" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("above", [b"", b"\n\n", b",,,\r\n"])
def test_a_header_name_with_a_line_break_after_blank_lines(tmp_path: Path, above: bytes):
    path = tmp_path / "x.csv"
    path.write_bytes(above + b'Key,"First\nName",Last,\n1,Ann,Lee,\n2,Bob,Ray,\n')
    with open_input(str(path)) as source:
        assert source.header == ("Key", "First\nName", "Last", "column 4")
        rows = pd.concat(list(read_chunks(source)))
    assert rows["First\nName"].tolist() == ["Ann", "Bob"]
    assert rows.index.tolist() == [1, 2]
