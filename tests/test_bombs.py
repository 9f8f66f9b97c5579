"""Workbooks and archives that unpack to far more than they weigh: each refused with exit 2, naming the bound
and the option that raises it, before it is read whole. The real CLI in a subprocess whose peak memory is
measured; the bombs are real files built here, cheaply (streamed, or one packed block repeated)."""

from __future__ import annotations

import gzip
import os
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from tests.helpers import DV_HEADER, dv_row

GIB = 1 << 30
#: The peak memory a refusal may take (the issue's bound; importing pandas and pyarrow alone is ~150 MB).
MAX_PEAK = 1 << 30
#: A safety net only: the refusal itself comes within seconds (BENCHMARKS.md).
TIMEOUT = 300


def measured(*args: str) -> tuple[int, str, int]:
    """(exit code, stderr, peak RSS in bytes) of `mk-import ARGS` in a subprocess of its own.

    The address space is capped (well above MAX_PEAK), so that an unbounded reader fails fast instead of
    taking the machine down; os.wait4 gives this child's own peak, whatever other tests' children did.
    """
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (6 * GIB, 6 * GIB))

    with open(os.devnull, "wb") as devnull:
        process = subprocess.Popen([sys.executable, "-m", "importer", *args], stdout=devnull,
                                   stderr=subprocess.PIPE, preexec_fn=cap)
        assert process.stderr is not None
        deadline = time.monotonic() + TIMEOUT
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                pytest.fail(f"mk-import {' '.join(args)} still ran after {TIMEOUT} s")
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        err = process.stderr.read().decode()
        process.stderr.close()
    return process.returncode, err, usage.ru_maxrss * 1024


def assert_refused(source: Path, tmp_path: Path, bound: str) -> str:
    code, err, peak = measured("validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "out"))
    assert "Traceback" not in err, err[-3000:]
    assert code == 2, err[-2000:]
    assert bound in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert peak < MAX_PEAK, f"peak memory {peak / 2**20:.0f} MB"
    return err


def xlsx_bomb(folder: Path) -> Path:
    """A real workbook whose one cell is a shared string of 1.5 GiB (zip64, deflated: about 1.5 MB)."""
    small = folder / "small.xlsx"
    book = xlsxwriter.Workbook(str(small))
    book.add_worksheet().write_string(0, 0, "placeholder")
    book.close()
    bomb = folder / "bomb.xlsx"
    with zipfile.ZipFile(small) as model, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for member in model.infolist():
            if member.filename != "xl/sharedStrings.xml":
                out.writestr(member.filename, model.read(member))
        with out.open("xl/sharedStrings.xml", "w", force_zip64=True) as stream:
            stream.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.'
                         b'openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>')
            block = b"A" * (64 << 20)
            for _ in range(24):  # 1.5 GiB in one string
                stream.write(block)
            stream.write(b"</t></si></sst>")
    return bomb


def zeros_zip_bomb(folder: Path) -> Path:
    """A .zip of a header and 2 GiB of '0' (about 9 MB)."""
    bomb = folder / "export.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out, \
            out.open("export.csv", "w", force_zip64=True) as stream:
        stream.write((",".join(DV_HEADER) + "\n").encode())
        block = b"0" * (64 << 20)
        for _ in range(32):
            stream.write(block)
    return bomb


def _repeated_line_block() -> bytes:
    line = (",".join(dv_row("1", first="Ann", last="Lee", email="ann@example.com")) + "\n").encode()
    return line * ((64 << 20) // len(line))


def lines_gz_bomb(folder: Path) -> Path:
    """A .gz of one valid line repeated to 2 GiB. A .gz may be several members one after the other: one
    packed 64 MiB block, written 32 times, is 2 GiB unpacked for the price of packing it once."""
    block = gzip.compress(_repeated_line_block(), compresslevel=9)
    bomb = folder / "export.csv.gz"
    with bomb.open("wb") as out:
        out.write(gzip.compress((",".join(DV_HEADER) + "\n").encode()))
        for _ in range(32):
            out.write(block)
    return bomb


def lines_zip_bomb(folder: Path) -> Path:
    """A .zip of one valid line repeated to 512 MiB: within the size bound, far beyond the ratio."""
    bomb = folder / "lines.zip"
    block = _repeated_line_block()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out, \
            out.open("export.csv", "w", force_zip64=True) as stream:
        stream.write((",".join(DV_HEADER) + "\n").encode())
        for _ in range(8):
            stream.write(block)
    return bomb


#: Each construction of the issue, with the bound that stops it.
BOMBS = {"xlsx shared string 1.5 GiB": (xlsx_bomb, "(--max-compression-ratio 100)"),
         "zip header + 2 GiB of 0": (zeros_zip_bomb, "(--max-unpacked-mb 2048)"),
         "gz one line repeated to 2 GiB": (lines_gz_bomb, "(--max-compression-ratio 100)"),
         "zip one line repeated to 512 MiB": (lines_zip_bomb, "(--max-compression-ratio 100)")}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_is_refused_before_it_is_unpacked(name: str, tmp_path: Path):
    build, bound = BOMBS[name]
    bomb = build(tmp_path)
    assert bomb.stat().st_size < 16 << 20
    assert_refused(bomb, tmp_path, bound)


def test_a_gz_bomb_with_the_ratio_raised_stops_at_the_size_bound_early(tmp_path: Path):
    bomb = lines_gz_bomb(tmp_path)
    code, err, peak = measured("validate", str(bomb), "-m", "dealervault", "--out", str(tmp_path / "o2"),
                               "--max-compression-ratio", "100000", "--max-unpacked-mb", "64")
    assert code == 2, err
    assert "export.csv.gz: unpacks to more than 64 MB (--max-unpacked-mb 64)" in err
    assert peak < MAX_PEAK


def test_a_genuine_archive_and_workbook_still_read(tmp_path: Path, write_csv):
    rows = [DV_HEADER, *(dv_row(str(i), last=f"L{i}") for i in range(1, 2001))]
    source = write_csv(rows)
    packed = tmp_path / "export.csv.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    workbook = tmp_path / "export.xlsx"
    book = xlsxwriter.Workbook(str(workbook))
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        sheet.write_row(r, 0, row)
    book.close()
    for path in (packed, workbook):
        code, err, _ = measured("validate", str(path), "-m", "dealervault", "--out", str(tmp_path / f"out-{path.name}"))
        assert code == 0, err
