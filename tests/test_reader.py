"""Reader: encodings, delimiters, quoting, row numbers, and refusal of unreadable files."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd
import pytest

from importer.errors import InputError
from importer.reader import open_input, read_chunks

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


def test_short_rows_are_padded(tmp_path: Path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1\n2,x,y\n")
    frame = read_all(str(path))
    assert list(frame.loc[1]) == ["1", "", ""]


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
    import importer.reader

    monkeypatch.setattr(importer.reader, "ARROW_BLOCK_BYTES", 256)  # many small chunks on the fast path
    lines = ["a,b,c"] + [f"{i},x{i},y{i}" for i in range(1, 301)]
    lines[250] = "250,short"  # too few fields: pyarrow refuses, pandas pads
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines) + "\n")
    frame = read_all(str(path), chunk_rows=40)
    assert list(frame.index) == list(range(1, 301))
    assert list(frame["a"]) == [str(i) for i in range(1, 301)]
    assert list(frame.loc[250]) == ["250", "short", ""]
