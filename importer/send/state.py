"""What was saved, per department: SQLite (standard library, WAL), written as each answer arrives.

For each customer key: the hash of the last body saved successfully and the body itself (compressed), its
customerUuid and customerId, the fingerprint of the rows that built that body, and when. A rerun compares
hashes to skip unchanged customers, compares bodies to tell what it changes, and sends known customers with
their customerUuid so an update never depends on the server's duplicate matching. Beside them, the problems
reported by the last run, with when each was first reported and by how many runs in a row.

Default location: `$XDG_STATE_HOME/mk-import/<department>.sqlite` (`~/.local/state/...` without it).
A state file that is corrupt, was made for another department or by a newer mk-import is refused, never
silently reset.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pandas as pd
import pyarrow as pa

from importer.errors import ConfigError
from importer.read.reader import TEXT_DTYPE

#: 2: the rows' hash is called `fingerprint`, as everywhere else (1 called it `input_hash`).
#: 3: the last body sent is kept (`body`), and the problems reported (`problems`). A state of an earlier
#: schema is migrated when it is opened; its customers have no body until they are sent once.
SCHEMA_VERSION = 3
#: What load() gives for each customer key.
STATE_COLUMNS = ["customer_uuid", "customer_id", "fingerprint"]
#: customers turned from SQLite rows into a frame at a time by load(): fetched all at once, a million
#: customers' rows are several hundred MB of Python tuples and strings before the frame holds them
LOAD_BATCH = 100_000
#: keys asked for in one query (SQLite allows 32,766 parameters; a few hundred keep each statement small)
KEYS_PER_QUERY = 500
#: The first byte of a stored body: how the rest is packed. 2: a Zstandard frame made with _BODY_WORDS as its
#: dictionary (raw content), its size in its header. zlib with the same words as its preset dictionary (1,
#: what 0.2.0 wrote and is still read) took 13 µs a body on the sending's hot path, a tenth of the client's
#: time per request beside HTTP; Zstandard 5 µs, for bodies about an eighth larger (171 bytes for 151).
_BODY_FORMAT = b"\x02"
_ZLIB_FORMAT = b"\x01"
#: Zstandard's level for the bodies: 1 and 2 are no faster on a body this short and larger, from 4 on slower
_BODY_LEVEL = 3
#: Words most bodies hold, given to the compressor as a dictionary: a body is a few hundred bytes, too short
#: for it to learn its own keys from, and with them a million bodies take about half the room. Never change
#: these bytes under _BODY_FORMAT 1 or 2: the bodies stored with them could not be read back.
_BODY_WORDS = (
    # The makes and the words of addresses and emails most often met in US dealers' exports...
    b'Toyota Honda Ford Chevrolet Nissan Hyundai Kia Subaru Jeep Ram GMC Dodge Mazda Volkswagen BMW Lexus Tesla'
    b' Mercedes-Benz Audi Buick Cadillac Chrysler Acura Infiniti Lincoln Volvo TOYOTA HONDA FORD CHEVROLET NISSAN'
    b' Camry Corolla RAV4 Civic Accord CR-V F-150 Silverado Altima Rogue Elantra Tucson Outback Wrangler Model 3'
    b' Street Avenue Road Drive Lane Court Boulevard St Ave Rd Dr Ln Ct Blvd Way Pl Apt Suite Main Oak Park Maple'
    b'@outlook.com"@hotmail.com"@comcast.net"@icloud.com"@aol.com"@yahoo.com"@gmail.com"'
    # ... then the body's own structure, the commonest last: the compressor finds the nearest copies cheapest.
    b'{"customer":{"customerKey":"","firstName":"","middleName":"","lastName":"","company":"","isBusiness":true,'
    b'"preferredLocale":"en-US","okToCall":false,"okToText":false}"okToEmail":false}"okToCall":true,"okToText":true}'
    b'"okToEmail":true}"label":"work"}"label":"home"},{"phoneNumber":"+1'
    b'"vehicleModel":"","estimatedMileage":"},{"vin":"","vehicleYear":"20","vehicleMake":"'
    b'"addresses":[{"line1":"","line2":"","city":"","state":"","zip":"","country":"US","type":"PRIMARY",'
    b'"addressType":"P"}],"emails":[{"emailAddress":"","label":"home"}],"phoneNumbers":[{"phoneNumber":"+1'
    b'","label":"cell"}]},"vehicles":[{"vin":""}],"validateVin":true,"searchForDuplicate":true}')


#: What a body holds that the state has elsewhere (the key) or that is the same for every body: not kept.
_NOT_KEPT = ("validateVin", "searchForDuplicate")
_NOT_KEPT_OF_CUSTOMER = ("customerKey", "customerUuid")


class _Codec:
    """A Zstandard compressor and decompressor with the bodies' dictionary: making them is what costs, not a
    body, so each thread makes its own once (neither may be shared between threads) and keeps it."""

    def __init__(self) -> None:
        # Imported when the first body is packed or read: only a run, or a validate with a state, does.
        import zstandard

        words = zstandard.ZstdCompressionDict(_BODY_WORDS, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        self.compressor = zstandard.ZstdCompressor(level=_BODY_LEVEL, dict_data=words, write_content_size=True,
                                                   write_checksum=False, write_dict_id=False)
        self.decompressor = zstandard.ZstdDecompressor(dict_data=words)
        self.error: type[Exception] = zstandard.ZstdError


_per_thread = threading.local()


def _codec() -> _Codec:
    codec: _Codec | None = getattr(_per_thread, "codec", None)
    if codec is None:
        codec = _per_thread.codec = _Codec()
    return codec


def pack_body(body: Mapping[str, Any]) -> bytes:
    """A body as the state keeps it: what tells one customer's body from another's, compressed."""
    customer = body.get("customer") or {}
    kept = {name: value for name, value in body.items() if name not in _NOT_KEPT}
    kept["customer"] = {name: value for name, value in customer.items() if name not in _NOT_KEPT_OF_CUSTOMER}
    return _BODY_FORMAT + _codec().compressor.compress(orjson.dumps(kept))


def unpack_body(blob: bytes) -> dict[str, Any] | None:
    """A body kept by pack_body, or by 0.2.0's (without what it does not keep); None for one this version
    cannot read (it is then as if none was kept)."""
    try:
        if blob[:1] == _BODY_FORMAT:
            codec = _codec()
            try:
                text = codec.decompressor.decompress(blob[1:])
            except codec.error:
                return None
        elif blob[:1] == _ZLIB_FORMAT:
            unpacker = zlib.decompressobj(zdict=_BODY_WORDS)
            text = unpacker.decompress(blob[1:]) + unpacker.flush()
        else:
            return None
        body = orjson.loads(text)
    except (zlib.error, orjson.JSONDecodeError):
        return None
    return body if isinstance(body, dict) else None


_CUSTOMERS_TABLE = ("CREATE TABLE {name} (customer_key TEXT PRIMARY KEY, payload_hash TEXT NOT NULL,"
                    " customer_uuid TEXT NOT NULL, customer_id TEXT, saved_at TEXT NOT NULL, fingerprint TEXT,"
                    " body BLOB) WITHOUT ROWID")
_PROBLEMS_TABLE = ("CREATE TABLE problems (subject TEXT NOT NULL, code TEXT NOT NULL, first_seen TEXT NOT NULL,"
                   " times_seen INTEGER NOT NULL, PRIMARY KEY (subject, code))")


def default_state_path(department: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in department)
    return base / "mk-import" / f"{safe}.sqlite"


def payload_hash(body_text: str) -> str:
    return hashlib.sha256(body_text.encode("utf-8")).hexdigest()[:32]


class Saved(NamedTuple):
    """What a successful save leaves in the state (a NamedTuple: see pool.Outcome)."""

    #: payload_hash of the body saved
    body_hash: str
    customer_uuid: str
    customer_id: str | None
    #: the hash of the rows that built that body (customers.CustomerGroup.fingerprint), to skip rebuilding it
    fingerprint: str = ""
    #: the body saved, packed by pack_body, to tell what the next change to it changes
    body: bytes | None = None


#: The columns of the problems a state remembers, one row per problem: the row it is about (its customer key,
#: or `#` and a hash of the row's cells where it has none), its code, the run that first reported it (ISO
#: 8601, UTC) and how many runs in a row reported it, the last one included.
PROBLEM_COLUMNS = ("subject", "code", "first_seen", "times_seen")
#: Problems read or written at a time: a migration reports hundreds of thousands of rows to fix.
_PROBLEMS_AT_A_TIME = 50_000


def problems_frame(rows: Sequence[tuple[str, str, str, int]] = ()) -> pd.DataFrame:
    """Problems as the state keeps them (PROBLEM_COLUMNS): texts in Arrow, no Python object per problem
    (a dict of 300,000 of them held 100 MB)."""
    subject, code, first, times = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pd.DataFrame({"subject": pd.Series(subject, dtype=TEXT_DTYPE), "code": pd.Series(code, dtype=TEXT_DTYPE),
                         "first_seen": pd.Series(first, dtype=TEXT_DTYPE),
                         "times_seen": pd.Series(times, dtype="int64")})


class StateStore:
    """The state file of one department."""

    def __init__(self, path: Path, department: str) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        existed = path.exists()
        self._lock = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
        try:
            # Two runs on one state would both send a new customer, and the server's duplicate search cannot
            # see a save still in flight: one run per state file, the second refused before it sends anything.
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise ConfigError(f"{path}: in use by another mk-import run (one run per state file at a time)") from None
        try:
            self._open(department, existed)
        except BaseException:
            os.close(self._lock)
            raise
        self.department = department

    @contextlib.contextmanager
    def _readable(self) -> Iterator[None]:
        """A file SQLite cannot read as a database (damaged, or another kind of file) is a usage error, exit 2,
        however far the run has got reading it."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: not a usable mk-import state file ({exc}); "
                              "move it aside to start afresh") from None

    def _open(self, department: str, existed: bool) -> None:
        with self._readable():
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._check_or_create(department, existed)
            if existed:
                # Damaged pages show only when read: find them now, before anything is sent.
                problems = [row[0] for row in self._db.execute("PRAGMA quick_check(3)")]
                if problems != ["ok"]:
                    raise sqlite3.DatabaseError(f"damaged: {problems[0]}")

    def _check_or_create(self, department: str, existed: bool) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            if existed and tables:
                raise ConfigError(f"{self.path}: not an mk-import state file")
            self._db.executescript(
                "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
                + _CUSTOMERS_TABLE.format(name="customers") + ";"
                "CREATE TABLE sending (customer_key TEXT PRIMARY KEY);" + _PROBLEMS_TABLE)
            self._db.executemany("INSERT INTO meta VALUES (?, ?)",
                                 [("schema_version", str(SCHEMA_VERSION)), ("department", department)])
            return
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        try:
            version = int(meta.get("schema_version", "0"))
        except ValueError:
            raise ConfigError(f"{self.path}: not a usable mk-import state file (schema_version "
                              f"{str(meta.get('schema_version'))[:20]!r}); move it aside to start afresh") from None
        if version > SCHEMA_VERSION:
            raise ConfigError(f"{self.path}: made by a newer mk-import (state schema {version}); upgrade mk-import")
        if meta.get("department") != department:
            raise ConfigError(f"{self.path}: state of department {meta.get('department')!r}, not {department!r}")
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        """Bring a state written by an earlier mk-import to this schema, in one transaction."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if version < 2:
                self._db.execute("ALTER TABLE customers RENAME COLUMN input_hash TO fingerprint")
            if version < 3:
                # Rebuilt rather than altered: keyed by customer key alone (WITHOUT ROWID), a customer's line no
                # longer has its key a second time in an index, which the bodies now kept make worth saving.
                self._db.execute(_CUSTOMERS_TABLE.format(name="customers_3"))
                self._db.execute("INSERT INTO customers_3 (customer_key, payload_hash, customer_uuid, customer_id,"
                                 " saved_at, fingerprint) SELECT customer_key, payload_hash, customer_uuid,"
                                 " customer_id, saved_at, fingerprint FROM customers")
                self._db.execute("DROP TABLE customers")
                self._db.execute("ALTER TABLE customers_3 RENAME TO customers")
                self._db.execute(_PROBLEMS_TABLE)
            self._db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION),))

    def load(self) -> pd.DataFrame:
        """What the plan needs of every customer saved for this department (STATE_COLUMNS), indexed by
        customer key: one frame, as a million objects would not load in a fraction of a second. The body and
        its hash are asked for by key (bodies, hashes), for the customers whose rows changed."""
        key, *text = self._text_columns("SELECT customer_key, customer_uuid, customer_id, fingerprint FROM customers")
        return pd.DataFrame(dict(zip(STATE_COLUMNS, text, strict=True)), index=pd.Index(key, name="customer_key"))

    def keys(self) -> pd.Index:
        """The keys of the customers saved for this department (load() without the rest: what the run reads
        before it plans)."""
        (keys,) = self._text_columns("SELECT customer_key FROM customers")
        index: pd.Index = pd.Index(keys)
        return index

    def _text_columns(self, query: str) -> list[Any]:
        """Each column of the query's rows in the reader's text dtype (with pandas 2.3's "str" a missing
        customerId became "None"). Each batch of LOAD_BATCH rows becomes a chunk of one Arrow column: frames
        per batch joined at the end held every value twice, and the batches' Python objects once more, 230 MB
        over a million customers."""
        with self._readable():
            cursor = self._db.execute(query)
            chunks: list[list[pa.Array]] = [[] for _ in cursor.description]
            while rows := cursor.fetchmany(LOAD_BATCH):
                for at, values in enumerate(zip(*rows, strict=True)):
                    chunks[at].append(pa.array(values, pa.large_string()))
                del rows
        return [TEXT_DTYPE.__from_arrow__(pa.chunked_array(parts, pa.large_string())) for parts in chunks]

    def record(self, saves: Sequence[tuple[str, Saved, bool]], noted: Sequence[tuple[str, str]] = ()) -> None:
        """In one transaction: successful saves (key, what was saved, whether it was journaled), each with
        the end of its journal entry; and `noted` (key, fingerprint): saved customers whose rows changed but
        build the same body, so the next run need not build it again."""
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        rows = [(key, saved.body_hash, saved.customer_uuid, saved.customer_id, now, saved.fingerprint, saved.body)
                for key, saved, _ in saves]
        journal_ends = [(key,) for key, _, journaled in saves if journaled]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO customers (customer_key, payload_hash, customer_uuid,"
                                 " customer_id, saved_at, fingerprint, body) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            if journal_ends:
                self._db.executemany("DELETE FROM sending WHERE customer_key = ?", journal_ends)
            if noted:
                self._db.executemany("UPDATE customers SET fingerprint = ? WHERE customer_key = ?",
                                     [(fingerprint, key) for key, fingerprint in noted])

    def bodies(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The packed bodies last saved for these keys (a key saved before bodies were kept has none)."""
        return self._of_keys("body", keys)

    def hashes(self, keys: Sequence[str]) -> dict[str, str]:
        """The body hashes last saved for these keys: asked for the customers whose rows changed only, not
        loaded for every customer (a million of them, and their copy beside the requests, 80 MB of a rerun)."""
        return self._of_keys("payload_hash", keys)

    def _of_keys(self, column: str, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self._readable():
            for at in range(0, len(keys), KEYS_PER_QUERY):
                part = keys[at:at + KEYS_PER_QUERY]
                found.update(self._db.execute(
                    f"SELECT customer_key, {column} FROM customers WHERE {column} IS NOT NULL AND customer_key IN "
                    f"({','.join('?' * len(part))})", part))
        return found

    def problems(self) -> pd.DataFrame:
        """The problems the last run reported (PROBLEM_COLUMNS, one row per subject and code)."""
        parts = []
        with self._readable():
            cursor = self._db.execute("SELECT subject, code, first_seen, times_seen FROM problems")
            while rows := cursor.fetchmany(_PROBLEMS_AT_A_TIME):
                parts.append(problems_frame(rows))
        return pd.concat(parts, ignore_index=True) if parts else problems_frame()

    def replace_problems(self, problems: pd.DataFrame) -> None:
        """This run's problems (PROBLEM_COLUMNS) replace the last run's: a problem no longer reported is
        forgotten."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM problems")
            for at in range(0, len(problems), _PROBLEMS_AT_A_TIME):
                part = problems.iloc[at:at + _PROBLEMS_AT_A_TIME]
                self._db.executemany("INSERT OR REPLACE INTO problems VALUES (?, ?, ?, ?)", zip(
                    *(part[c].tolist() for c in PROBLEM_COLUMNS[:3]), map(int, part["times_seen"]), strict=True))

    def journal_sending(self, key: str) -> None:
        """Note, before it is sent, a request whose fate a crash would leave unknown."""
        self._db.execute("INSERT OR IGNORE INTO sending VALUES (?)", (key,))

    def forget_sending(self, key: str) -> None:
        """The request noted by `journal_sending` surely did not save anything (or was recorded)."""
        self._db.execute("DELETE FROM sending WHERE customer_key = ?", (key,))

    def journaled(self) -> set[str]:
        """Keys sent by an earlier run that ended before their outcome was known."""
        with self._readable():
            return {key for (key,) in self._db.execute("SELECT customer_key FROM sending")}

    def close(self) -> None:
        self._db.close()
        os.close(self._lock)
