"""The state file's size with the bodies kept: every customer of the 1M-row DealerVault file saved into a state,
as a run saves them (the body each would send, packed; a uuid and id like the API's), then measured.

    python -m bench.bench_state [--rows 1000000]

Prints the customers, the file's size, bytes per customer and that scaled to a million customers, the same
state without its bodies (for the cost of keeping them), and how long loading the state and fetching the
bodies of 10,000 customers take.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import dealervault_file, load
from importer.config import PrepareConfig
from importer.prepare.mapping import load_mapping
from importer.prepare.stage import prepare
from importer.read.reader import open_input
from importer.send.client import encode_body
from importer.send.state import Saved, StateStore, pack_body, payload_hash

BATCH = 1_000


def _size(path: Path) -> int:
    """The state on disk after a checkpoint (the database and what is left of its write-ahead log)."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    source_path = dealervault_file(args.rows)
    before = load()
    mapping = load_mapping("dealervault")
    started = time.monotonic()
    with open_input(str(source_path)) as source:
        prepared = prepare(source, mapping, PrepareConfig(str(source_path), "dealervault"), keep_rows=True)
    requests = prepared.requests(mapping, True)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "state.sqlite"
        store = StateStore(path, "bench")
        customers = 0
        body_bytes = packed_bytes = 0
        saves: list[tuple[str, Saved, bool]] = []
        for group in requests.groups():
            body = requests.request(group).body
            text = encode_body(body)
            packed = pack_body(body)
            body_bytes += len(text)
            packed_bytes += len(packed)
            saves.append((group.key, Saved(payload_hash(text), str(uuid.uuid4()), str(10_000_000 + customers),
                                           group.fingerprint, packed), False))
            customers += 1
            if len(saves) >= BATCH:
                store.record(saves)
                saves = []
        store.record(saves)
        built_s = time.monotonic() - started
        started = time.monotonic()
        loaded = store.load()
        load_s = time.monotonic() - started
        keys = loaded.index[::max(1, len(loaded) // 10_000)][:10_000].tolist()
        started = time.monotonic()
        fetched = store.bodies(keys)
        bodies_s = time.monotonic() - started
        store.close()
        with_bodies = _size(path)
        with sqlite3.connect(path) as db:
            db.execute("VACUUM")
        compacted = _size(path)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE customers SET body = NULL")
        with sqlite3.connect(path) as db:
            db.execute("VACUUM")
        without = _size(path)
    per = with_bodies / customers
    print(f"{args.rows:,} rows, {customers:,} customers; bodies {body_bytes / customers:.0f} bytes of JSON each, "
          f"packed {packed_bytes / customers:.0f} bytes ({100 * packed_bytes / body_bytes:.0f}%)")
    print(f"state with bodies {with_bodies / 1e6:.0f} MB: {per:.0f} bytes a customer, "
          f"{per * 1_000_000 / 1e6:.0f} MB for 1,000,000 customers; after VACUUM {compacted / customers:.0f} bytes "
          f"a customer; without bodies (after VACUUM) {without / customers:.0f} bytes a customer")
    print(f"built and recorded in {built_s:.0f} s; load() {load_s:.1f} s; bodies of {len(fetched):,} customers "
          f"in {bodies_s:.2f} s; load before: {before}, after: {load()}")


if __name__ == "__main__":
    main()
