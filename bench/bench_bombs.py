"""Zip bombs refused: for each construction of tests/test_bombs.py, the time to build it, the time
`mk-import validate` takes to refuse it, and that process's peak RSS.

    python -m bench.bench_bombs
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.test_bombs import BOMBS, measured


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mk-import-bombs-") as folder:
        root = Path(folder)
        print("| construction | file | built in | refused in | exit | peak RSS |")
        print("|---|---:|---:|---:|---:|---:|")
        for index, (name, (build, _)) in enumerate(BOMBS.items()):
            here = root / str(index)
            here.mkdir()
            started = time.perf_counter()
            bomb = build(here)
            built = time.perf_counter() - started
            started = time.perf_counter()
            code, _, peak = measured("validate", str(bomb), "-m", "dealervault", "--out", str(here / "out"))
            refused = time.perf_counter() - started
            print(f"| {name} | {bomb.stat().st_size / 2**20:.1f} MB | {built:.1f} s | {refused:.2f} s | {code} | "
                  f"{peak / 2**20:.0f} MB |")
            bomb.unlink()


if __name__ == "__main__":
    main()
