"""Where a run's reports go: a dated folder per run with a `latest` link, or a chosen one never overwritten;
and the files in it, each readable by its owner only (reports carry customer PII) and renamed into place once
whole."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from importer.config import ReportFolders
from importer.errors import ConfigError

#: The files a run or validate writes into its report folder.
REPORT_FILES = ("results.csv", "errors.csv", "errors.xlsx", "summary.json", "timeline.csv", "changes.json",
                "report.html")

#: The link, beside the dated folders, to the newest finished one.
LATEST = "latest"
_DATED = re.compile(r"^\d{8}-\d{6}(-\d+)?$")
log = logging.getLogger("mk_import.outdir")


def dated_folder(root: Path) -> Path:
    """root/<YYYYmmdd-HHMMSS>, suffixed -2, -3... after the runs of the same second, even pruned ones' names."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    taken = [_age_order(p)[1] for p in root.glob(f"{stamp}*") if _DATED.match(p.name)] if root.is_dir() else []
    return root / (f"{stamp}-{max(taken) + 1}" if taken else stamp)


def _age_order(folder: Path) -> tuple[str, int]:
    """Oldest first: by stamp, then by the suffix of runs within one second (2 before 10)."""
    stamp, _, n = folder.name.partition("-")[2].partition("-")
    return folder.name[:8] + stamp, int(n or 1)


def choose(out: Path | None, folders: ReportFolders) -> Path:
    """The report folder of a run about to start; refuses an `out` holding an earlier run's reports."""
    if out is None:
        return dated_folder(folders.root)
    if not folders.overwrite:
        # Any of the files a run writes means the folder holds an earlier run's reports.
        found = [name for name in REPORT_FILES if (out / name).exists()]
        if found:
            raise ConfigError(f"{out}: already holds an earlier run's reports ({', '.join(found)}); "
                              f"give another --out, or --overwrite to replace them")
    return out


#: The lock file in a report folder, held by the run writing its reports there.
LOCK_FILE = ".mk-import.lock"


@contextlib.contextmanager
def claimed(out: Path | None, folders: ReportFolders) -> Iterator[Path]:
    """The report folder of a run, locked for it until the run ends (flock on LOCK_FILE in the folder).

    Taken before the input is read: a second run into the same folder is refused (ConfigError, exit 2)
    instead of overwriting the first one's reports with its own. A dated folder is claimed by creating it,
    so two runs in one second get two folders. A folder created here and left empty (the run failed
    before writing a report) is removed again.
    """
    created: list[Path] = []  # folders made here, innermost last
    if out is None:
        if not folders.root.exists():
            created.append(folders.root)
        while True:
            out = dated_folder(folders.root)
            try:
                folders.root.mkdir(mode=0o700, parents=True, exist_ok=True)
                out.mkdir(mode=0o700)
            except FileExistsError:
                continue  # another run took this name first: the next one has a suffix
            created.append(out)
            break
    else:
        if not out.exists():
            created.append(out)
        make_private_dir(out)
    lock = out / LOCK_FILE
    descriptor = _lock(lock, out)
    try:
        choose(out, folders)  # under the lock: no run can write reports there meanwhile
        yield out
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(descriptor)  # unlinked before it is released: no one can lock the old file after us
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: the run failed before writing any report


def _lock(lock: Path, out: Path) -> int:
    """An exclusive flock on `lock`, or ConfigError when another run holds it."""
    for _ in range(5):
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise ConfigError(f"{out}: another mk-import run is writing its reports there; wait for it to "
                              "finish, or give another --out") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return descriptor
        os.close(descriptor)  # the run that held it removed it as we locked it: lock the new one
    raise ConfigError(f"{out}: another mk-import run keeps taking this folder; give another --out")


def finish(out: Path, folders: ReportFolders) -> None:
    """After the reports are written in a dated folder: point `latest` at it, prune beyond `keep`.

    The run is over and its reports are written: a failure here is a warning, never the run's outcome.
    """
    if out.parent != folders.root or not _DATED.match(out.name):
        return  # a folder the user chose: nothing around it is ours to touch
    try:
        _link_and_prune(out, folders)
    except OSError as exc:
        log.warning("reports written in %s, but updating %s failed: %s", out, folders.root / LATEST,
                    exc.strerror or exc)


def _link_and_prune(out: Path, folders: ReportFolders) -> None:
    link = folders.root / LATEST
    temporary = folders.root / f".{LATEST}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(out.name)  # relative, so the tree can be moved or mounted elsewhere
    os.replace(temporary, link)  # atomic: a reader never sees `latest` missing
    if folders.keep is None:
        return
    dated = sorted((p for p in folders.root.iterdir() if _DATED.match(p.name) and p.is_dir() and not p.is_symlink()),
                   key=_age_order)
    # The one just written is never pruned, whatever the clock did.
    for old in [p for p in dated if p != out][:max(0, len(dated) - max(folders.keep, 1))]:
        shutil.rmtree(old)


def refuse_overwriting_input(input_name: str, out_dir: Path | None, payloads: Path | None = None) -> None:
    """Refuse a report folder or payloads file that would overwrite the input (an errors.csv imported again
    with --out naming its own folder, say): the export would be lost while it is being read."""
    if input_name == "-":
        return
    source = Path(input_name)
    targets = [payloads] if payloads is not None else []
    if out_dir is not None:
        targets += [out_dir, *(out_dir / name for name in REPORT_FILES)]
    for target in targets:
        try:
            same = target.exists() and os.path.samefile(target, source)
        except OSError:
            same = False
        if same:
            flag = "--payloads" if target == payloads else "--out"
            raise ConfigError(f"{flag} {target}: would overwrite the input file {input_name}; choose another place")


def make_private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _private_path(path: Path) -> Iterator[int]:
    """A descriptor for a file only its owner can read, renamed into place once completely written."""
    temporary = path.with_name(f".{path.name}.partial")
    # Readable too: errors.xlsx's second process reads errors.csv through it while it is written (workbook.Beside).
    descriptor = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        yield descriptor
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def private_file(path: Path, *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A private text file (see _private_path)."""
    with _private_path(path) as descriptor, open(descriptor, "w", encoding=encoding, newline="") as stream:
        yield stream


@contextlib.contextmanager
def private_binary_file(path: Path) -> Iterator[IO[bytes]]:
    """A private binary file (see _private_path): for writers that want a stream, such as a workbook's."""
    with _private_path(path) as descriptor, open(descriptor, "wb") as stream:
        yield stream
