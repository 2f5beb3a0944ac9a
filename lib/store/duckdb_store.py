"""The embedded engine: one DuckDB file, the default.

DuckDB lets one process hold a database file at a time. The dashboard and the command line share the
file by never keeping it open: every operation opens a connection, does its work and closes it, and an
open that meets another process's lock waits and retries (with backoff) for up to ``busy_timeout``
seconds before telling the user who holds the file. Within a process, DuckDB shares one database
instance between the connections of all threads, so Streamlit's threads are safe.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import glob
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from lib.errors import BadInput, QueryFailed, StoreBusy, StoreUnavailable, TriageError
from lib.model import EARLIEST, LATEST, SourceTable
from lib.store.base import NO_DATES, DateSpan, Params, Store, Transaction, normalise_frame
from lib.store.dialect import Dialect, quote_identifier

_LOCK_PATTERN = re.compile(r"Could not set lock|Conflicting lock|database is locked", re.I)
_PID_PATTERN = re.compile(r"PID (\d+)")


def _used_params(sql: str, params: Params | None) -> dict[str, Any]:
    """DuckDB refuses parameters a statement does not name; pass only those it does."""
    if not params:
        return {}
    return {k: v for k, v in params.items() if re.search(rf"\${re.escape(k)}\b", sql)}


#: How long this process keeps the file open after its last operation while no other process waits for it.
#: Opening a DuckDB instance costs about 10 ms (even an empty one), and a page, a command or a classification
#: runs its statements back to back: reopening between them was a third of the time of a page's reads. A
#: process that wants the file meanwhile gets it within this time (it retries with backoff), or at once when
#: it has said it waits (its marker beside the file: then nobody keeps the file open past an operation).
LINGER_SECONDS = 0.25


def _stamp(path: Path) -> tuple[int, ...] | None:
    """What identifies the file's content from outside: its inode, modification time and size (and the WAL's)."""
    try:
        main = path.stat()
    except OSError:
        return None
    try:
        wal = Path(f"{path}.wal").stat()
        extra: tuple[int, ...] = (wal.st_mtime_ns, wal.st_size)
    except OSError:
        extra = ()
    return (main.st_dev, main.st_ino, main.st_mtime_ns, main.st_size, *extra)


class _Shared:
    """One open database instance of a file in this process, and how many operations use it."""

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, read_only: bool, identity: tuple[int, ...] | None
    ) -> None:
        self.connection = connection
        self.read_only = read_only
        #: The device and inode of the file it opened (None when another file was moved over the path while it
        #: opened): a file moved over the path since is another file, whatever its stamp.
        self.identity = identity
        self.users = 0
        #: While nobody uses it: the file's stamp when the last user left, and the timer that closes it.
        self.idle_stamp: tuple[int, ...] | None = None
        self.timer: threading.Timer | None = None


# DuckDB allows one instance of a file per process: connecting to it from several threads at once
# races ("already attached"). All stores of this process share one instance per path, opened by the
# first operation and closed shortly after the last (``LINGER_SECONDS``), so that other processes can take
# the file in between.
_instances: dict[Path, _Shared] = {}
_instances_lock = threading.Lock()
#: One writer at a time per file in this process, whichever store object writes (other processes are kept out by
#: DuckDB's file lock): what a transaction read is then still true when it commits.
_write_locks: dict[Path, threading.RLock] = {}
#: Per thread: the files its current run keeps (``DuckDBStore.held``): True while the run has one, False when it let
#: waiters in and takes it again at its next statement, or the busy error the run met taking it (its statements then
#: say so at once, rather than each waiting the whole busy timeout again).
_runs = threading.local()
#: s: a process that has waited this long for the file is let in before this process starts another run.
FAIR_SECONDS = 3.0
#: s: a waiting process refreshes its marker's time between its tries (every quarter second at most); a marker not
#: refreshed for this long is left behind (its process was killed while it waited, and its number may be another
#: process's now) and is removed, so that it holds nobody up.
STALE_SECONDS = 5.0
#: ``existing_tables`` per path, with the file version it was read at.
_tables_seen: dict[Path, tuple[str, frozenset[str]]] = {}
#: Per file, the journal of declared writes (``DuckDBStore.touching``): the data version after a write, then the version
#: before it, the dates it changed (a span; None: a visit; ``NO_DATES``) and whether it only rebuilt derived data. A
#: write is journaled only by the process that kept the file open from before it to after it (no other process can
#: write meanwhile), so a chain of entries from one version to another says all that changed between them. The oldest
#: go first. Every process's entries are also in a file beside the database (``_shared``), so that the nightly job's
#: writes, which say their dates, cost the dashboard a check of those dates only.
_journals: dict[Path, OrderedDict[str, tuple[str, DateSpan | None, bool]]] = {}
JOURNAL_KEPT = 512
#: Per file: the journal file's (inode, mtime, size) when this process last read it.
_shared_seen: dict[Path, tuple[int, int, int]] = {}
#: Per file: the data versions that other processes' rebuilds of the item index led to (journal file lines marked
#: derived). The index takes them as writes of their dates (``_read_shared``); no page's answer changes with them
#: (whatever version of the index answers, it answers as the rows do), so ``content_version`` steps over them, as
#: BigQuery's data version leaves the index's tables out.
_rebuilt_elsewhere: dict[Path, set[str]] = {}


def _close(path: Path, shared: _Shared) -> None:
    """Close an instance nobody uses (under ``_instances_lock``)."""
    if shared.timer is not None:
        shared.timer.cancel()
        shared.timer = None
    if _instances.get(path) is shared:
        del _instances[path]
    shared.connection.close()


def _fresh(marker: Path, now: float) -> bool:
    """Whether a wait marker was refreshed within ``STALE_SECONDS`` (False when it is gone)."""
    try:
        return now - marker.stat().st_mtime < STALE_SECONDS
    except OSError:
        return False


def _waiting_since(marker: Path) -> float:
    """When the wait of a marker began (epoch seconds); a marker without that instant (an older version's, or one
    being written) counts from its time, as markers did before they held it."""
    with contextlib.suppress(OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return float(marker.read_text(encoding="ascii"))
    with contextlib.suppress(OSError):
        return marker.stat().st_mtime
    return time.time()  # gone: it is no longer waiting


def _reusable(shared: _Shared, store: DuckDBStore) -> bool:
    """An idle instance serves the next operation only if the file is the one it opened, untouched since (a file
    copied or moved over the path is opened afresh), in the mode the store needs, and nobody else waits for it."""
    stamp = _stamp(store.path)
    return (
        shared.read_only == store.read_only
        and shared.identity is not None
        and shared.identity == (stamp or ())[:2]
        and shared.idle_stamp == stamp
        and not store._waiters()
    )


def _run_holds() -> dict[Path, bool | StoreBusy]:
    holds: dict[Path, bool | StoreBusy] | None = getattr(_runs, "holds", None)
    if holds is None:
        holds = _runs.holds = {}
    return holds


def _declared(path: Path) -> list[tuple[DateSpan | None, bool]]:
    """This thread's open ``touching`` blocks on a file, innermost last: (span, derived)."""
    blocks: dict[Path, list[tuple[DateSpan | None, bool]]] | None = getattr(_runs, "touching", None)
    if blocks is None:
        blocks = _runs.touching = {}
    return blocks.setdefault(path, [])


def _bounding(spans: list[DateSpan | None]) -> DateSpan | None:
    """One span that covers every declared one (``NO_DATES`` when none declares dates but one changes what pages
    read; None when none does either)."""
    dated = [s for s in spans if s is not None and s != NO_DATES]
    if not dated:
        return NO_DATES if NO_DATES in spans else None
    starts, ends = [s[0] for s in dated], [s[1] for s in dated]
    return (None if None in starts else min(d for d in starts if d is not None),
            None if None in ends else max(d for d in ends if d is not None))  # fmt: skip


def _acquire(store: DuckDBStore) -> duckdb.DuckDBPyConnection:
    holds = _run_holds()
    state = holds.get(store.path)
    if isinstance(state, StoreBusy):  # this run waited the whole busy timeout already
        raise StoreBusy(state.what, state.todo)
    retake = state is False  # a run that let waiters in takes the file again for the rest of it
    with _instances_lock:
        shared = _instances.get(store.path)
        if shared is not None and shared.users == 0:
            store._check_file()
            if _reusable(shared, store):
                if shared.timer is not None:
                    shared.timer.cancel()
                    shared.timer = None
            else:
                _close(store.path, shared)
                shared = None
        if shared is None:
            was = (_stamp(store.path) or ())[:2]
            connection = store._open()
            now = (_stamp(store.path) or ())[:2]
            shared = _instances[store.path] = _Shared(connection, store.read_only, now if now == was else None)
        shared.users += 2 if retake else 1
        shared.idle_stamp = None
        if retake:
            holds[store.path] = True
        return shared.connection


def _expire(path: Path, shared: _Shared) -> None:
    with _instances_lock:
        if _instances.get(path) is shared and shared.users == 0:
            _close(path, shared)


def _release(store: DuckDBStore) -> None:
    path = store.path
    with _instances_lock:
        shared = _instances.get(path)
        if shared is None:
            return
        shared.users -= 1
        if shared.users > 0:
            return
        if LINGER_SECONDS <= 0 or store._waiters():
            _close(path, shared)
            return
        shared.idle_stamp = _stamp(path)
        shared.timer = threading.Timer(LINGER_SECONDS, _expire, (path, shared))
        shared.timer.daemon = True
        shared.timer.start()


def release_idle(path: Path | None = None) -> None:
    """Close this process's idle instances now (of one file, or all): before another process that does not wait
    is started on the file, and when the process ends."""
    with _instances_lock:
        for key, shared in list(_instances.items()):
            if shared.users == 0 and (path is None or key == Path(path).expanduser().resolve()):
                _close(key, shared)


atexit.register(release_idle)  # an instance still open at exit is closed in order, not torn down with the process


def _shared(path: Path) -> Path:
    """The journal file beside a database: a header naming the database file (device and inode: a journal left by a
    file since replaced is not read), then a line per declared write (``_line``)."""
    return path.with_name(f"{path.name}.journal")


def _header(identity: str) -> str:
    return f"triage journal 2 {identity}"


def _identity(version: str) -> str:
    """The database file a data version was taken of (device and inode, ``_file_version``'s first fields)."""
    return ":".join(version.split("|", 1)[0].split(":")[:2])


def _line(after: str, entry: tuple[str, DateSpan | None, bool]) -> str:
    before, span, derived = entry
    if span is None:
        where = "visit"
    elif span == NO_DATES:
        where = "undated"
    else:
        where = f"{span[0] or ''}..{span[1] or ''}"
    return f"{after}\t{before}\t{where}\t{int(derived)}\n"


def _parse(line: str) -> tuple[str, tuple[str, DateSpan | None, bool]] | None:
    """A journal line back as (after, entry); None for a line that is not one (it is skipped, never trusted)."""
    parts = line.split("\t")
    if len(parts) != 4 or not parts[0] or not parts[1] or parts[3] not in ("0", "1"):
        return None
    after, before, where, derived = parts
    span: DateSpan | None
    if where == "visit":
        span = None
    elif where == "undated":
        span = NO_DATES
    else:
        lo, sep, hi = where.partition("..")
        if not sep:
            return None
        try:
            span = (dt.date.fromisoformat(lo) if lo else None, dt.date.fromisoformat(hi) if hi else None)
        except ValueError:
            return None
    return after, (before, span, derived == "1")


#: Bytes of the journal file read at most: a larger one (never written so by this code) is neither read nor kept:
#: the next write starts the file again.
SHARED_MAX_BYTES = 512 * 1024


def _readable(side: Path) -> os.stat_result | None:
    """The journal file's status when it is one to read: a regular file (not a link, a pipe, which would hold a read
    up, or a folder) of at most ``SHARED_MAX_BYTES``."""
    try:
        st = side.lstat()
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) and st.st_size <= SHARED_MAX_BYTES else None


def _share(path: Path, after: str, entry: tuple[str, DateSpan | None, bool]) -> None:
    """Add a journaled write to the journal file. Called while this process keeps the database open (DuckDB's lock:
    no other process writes either). The file is started again when it names another database file, and cut to the
    newest ``JOURNAL_KEPT`` lines when it holds about twice that; where it cannot be written (a read-only folder),
    other processes check every date after this write, as before there was a journal file."""
    side = _shared(path)
    line = _line(after, entry)
    header = _header(_identity(after))  # the file written (``_journal`` checked that it is still the one at the path)
    with contextlib.suppress(OSError):
        kept: list[str] = []
        if _readable(side):  # (anything else there, a pipe, a link, a folder: replaced below, or left as it is)
            with side.open("rb") as fh:
                if fh.readline(len(header) + 2).rstrip(b"\n") == header.encode():
                    if os.fstat(fh.fileno()).st_size < JOURNAL_KEPT * 2 * len(line):
                        with side.open("a", encoding="utf-8") as out:
                            out.write(line)  # one write of one line: a reader takes only the lines that end
                        return
                    text = fh.read(SHARED_MAX_BYTES).decode("utf-8", errors="replace")
                    kept = text.split("\n")[:-1][-JOURNAL_KEPT:]  # the newest whole lines
        fresh = side.with_name(f"{side.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        fresh.write_text("".join(f"{ln}\n" for ln in [header, *kept]) + line, encoding="utf-8")
        os.replace(fresh, side)  # whole, at once: a reader sees the old file or the new one


def _read_shared(path: Path, identity: str) -> bool:
    """Take in the entries other processes added to the journal file since this process last read it; whether any
    was new. Only for the database file ``identity`` (the one at the path now). Another process's rebuilds are taken
    as writes of their dates, not as derived: that process may run another version of the index, whose rebuilds do
    not bring it in line with this one's."""
    side = _shared(path)
    st = _readable(side)
    if st is None:
        return False
    seen = (st.st_ino, st.st_mtime_ns, st.st_size)
    with _instances_lock:
        if _shared_seen.get(path) == seen:
            return False
    try:  # read outside the lock: another thread's next operation does not wait for this file
        text = side.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return False
    first, _, rest = text.partition("\n")
    found = [parsed for line in rest.split("\n")[:-1] if (parsed := _parse(line)) is not None]
    taken = False
    with _instances_lock:
        _shared_seen[path] = seen
        if first != _header(identity):
            return False
        entries = _journals.setdefault(path, OrderedDict())
        rebuilt = _rebuilt_elsewhere.setdefault(path, set())
        for after, (before, span, derived) in found:  # the last piece is empty, or a line still being written
            if after not in entries:
                entries[after] = (before, span, False)
                if derived:
                    rebuilt.add(after)
                taken = True
        while len(entries) > 2 * JOURNAL_KEPT:
            rebuilt.discard(entries.popitem(last=False)[0])
    return taken


class _DuckTransaction(Transaction):
    def __init__(self, store: DuckDBStore, con: duckdb.DuckDBPyConnection) -> None:
        self._store = store
        self._con = con

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        return self._store._run_query(self._con, sql, params)

    def execute(self, sql: str, params: Params | None = None) -> int:
        return self._store._run_execute(self._con, sql, params)

    def insert_frame(self, table_ref: str, frame: pd.DataFrame) -> int:
        return self._store._run_insert(self._con, table_ref, frame)


class DuckDBStore(Store):
    engine = "duckdb"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0, create: bool = True) -> None:
        if not str(path).strip():
            raise BadInput(
                "The database path is empty.", "Give a DuckDB file with --db or TRIAGE_DB (is a variable unset?)."
            )
        self.path = Path(path).expanduser().resolve()
        self.busy_timeout = busy_timeout
        self.create = create  # False: a read that must not create a file or a folder
        self.read_only = False
        self.dialect = Dialect("duckdb")
        with _instances_lock:
            self._write_lock = _write_locks.setdefault(self.path, threading.RLock())

    @property
    def location(self) -> str:
        return str(self.path)

    # -- connections ------------------------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on this process's shared instance of the file, released when the block ends."""
        parent = _acquire(self)
        try:
            cursor = parent.cursor()
            try:
                cursor.execute("SET TimeZone='UTC'")
                # DuckDB 2.0's dictionary-caching operators fail some multi-join CTE plans after an UPDATE
                # ("dict-surviving cache ... changed identity", an internal error that invalidates the
                # database): the classifier's statements hit it, so they are off.
                cursor.execute("SET enable_caching_operators = false")
                yield cursor
            finally:
                cursor.close()
        finally:
            _release(self)

    @contextmanager
    def held(self) -> Iterator[None]:
        """A dashboard run: this process keeps the file from the start of the block to its end. Another process
        that wants the file (the nightly job) then has its turn between runs, not between a run's statements: a
        page waited for one of the job's batches per statement, 80 s in all with eight people at once.

        A run does not start while another process has waited ``FAIR_SECONDS`` for the file
        (``_let_the_starved_in``): eight people's overlapping runs cannot keep the job out. That wait is at the
        block's start, where the run holds no other lock (a run that waited for the job while holding the file, or
        a cache or index lock that a run holding the file waits for, would keep both waiting). A long write within
        the run lets go where it lets waiters in (``let_waiters_in``) and takes the file again at its next
        statement. A file that cannot be opened here is not held: the run's own statements say why (a file busy for the
        whole busy timeout at once, without another wait each)."""
        holds = _run_holds()
        if self.path in holds:  # within a run already
            yield
            return
        self._let_the_starved_in()
        try:
            _acquire(self)
            holds[self.path] = True
        except StoreBusy as exc:
            holds[self.path] = exc
        except TriageError:
            holds[self.path] = False
        try:
            yield
        finally:
            if holds.pop(self.path, False) is True:
                _release(self)

    def _check_file(self, *, read_head: bool = False) -> None:
        """Refuse, with a clear message, what is not a DuckDB file we may use, before DuckDB sees it (it would
        try to load extensions for other formats).

        Only ``read_head`` (just before this process opens the file) reads the file itself: DuckDB locks it with a
        POSIX record lock, which the process loses when it closes any descriptor of the file, so nothing else may
        open it while this process's instance is open (the rest of the checks only look at its metadata)."""
        if self.path.is_dir():
            raise StoreUnavailable(f"{self.path} is a folder, not a database file.", "Give a file path with --db.")
        if not self.path.exists():
            if not self.create:
                raise StoreUnavailable(
                    f"There is no database at {self.path}.",
                    "Check the path, or create one: `python -m lib demo --db PATH --actor NAME` (demo data) or "
                    "`python -m lib init --db PATH --actor NAME`.",
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"Cannot create the folder for the database file {self.path}: {exc.strerror}.",
                    "Choose another path with --db or TRIAGE_DB.",
                ) from exc
            return
        if not read_head:
            head = b""
        else:
            try:
                with self.path.open("rb") as fh:
                    head = fh.read(16)
            except OSError as exc:
                raise StoreUnavailable(f"Cannot read the database file {self.path}: {exc.strerror}.",
                                       "Check its permissions.") from exc  # fmt: skip
        if head and head[8:12] != b"DUCK":
            kind = "a SQLite database" if head.startswith(b"SQLite format 3") else "not a DuckDB database"
            raise StoreUnavailable(
                f"{self.path} is {kind}.", "Give the dashboard's DuckDB file with --db or TRIAGE_DB."
            )
        # Read-only for us, or marked read-only (no write bit at all: also for root, who could write anyway).
        mode = self.path.stat().st_mode
        self.read_only = not os.access(self.path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

    def _writable(self) -> None:
        self._check_file()
        if self.read_only:
            raise StoreUnavailable(
                f"The database file {self.path} is read-only: it can be read, not changed.",
                "Nothing was changed. Give write permission on the file, or use another --db.",
            )

    def _open(self) -> duckdb.DuckDBPyConnection:
        self._check_file(read_head=True)
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.05
        marker: Path | None = None
        since = time.time()
        try:
            while True:
                try:
                    return duckdb.connect(str(self.path), read_only=self.read_only)
                except duckdb.IOException as exc:
                    if _LOCK_PATTERN.search(str(exc)):
                        marker = self._wait_marker(since, marker)
                    self._retry_or_raise(exc, deadline)
                    time.sleep(delay)
                    delay = min(delay * 2, 0.25)
                except duckdb.Error as exc:
                    raise StoreUnavailable(
                        f"Cannot open the database file {self.path}: {str(exc).splitlines()[0]}",
                        "If the file is damaged, move it aside; the dashboard recreates a demo database.",
                    ) from exc
        finally:
            if marker is not None:
                marker.unlink(missing_ok=True)

    # -- taking turns with other processes --------------------------------------------------------
    # A process that finds the file locked leaves a marker beside it while it waits: it holds the instant the wait began
    # and is touched at every try (its time is the waiter's heartbeat). A long writer (a classification) looks for
    # markers between its batches and pauses until they are gone; a run does not start while one has waited long.
    def _wait_marker(self, since: float, marker: Path | None) -> Path | None:
        """Leave the marker of a wait that began at ``since`` (epoch seconds), or refresh it (it is written again if
        another process removed it as stale while this one was held up)."""
        if marker is None:
            marker = self.path.with_name(f"{self.path.name}.waiting-{os.getpid()}-{threading.get_ident()}")
        try:
            try:
                os.utime(marker)
            except FileNotFoundError:
                marker.write_text(f"{since:.3f}")
        except OSError:
            return None  # a read-only folder: waiting still works, only without the courtesy
        return marker

    def _waiters(self) -> list[Path]:
        """The markers of other processes that wait for the file now: a marker whose process is gone, or that has not
        been refreshed for ``STALE_SECONDS`` (its number may be another process's by now, or another user's, whose
        process cannot be probed), is removed where we may and never counts."""
        alive = []
        now = time.time()
        for marker in self.path.parent.glob(f"{glob.escape(self.path.name)}.waiting-*"):
            pid = marker.name.rsplit(".waiting-", 1)[1].split("-", 1)[0]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
                running = True
            except ProcessLookupError:
                running = False  # its process is gone
            except PermissionError:
                running = True  # another user's process by that number: the heartbeat tells
            if running and _fresh(marker, now):
                alive.append(marker)
            else:
                with contextlib.suppress(OSError):
                    marker.unlink(missing_ok=True)
        return alive

    def others_waiting(self) -> bool:
        return bool(self._waiters())

    def in_dashboard_run(self) -> bool:
        return self.path in _run_holds()

    def let_waiters_in(self, *, at_most: float = 5.0) -> None:
        if not self._waiters():
            return
        holds = _run_holds()
        if holds.get(self.path) is True:  # this run keeps the file: it lets go, takes it again at its next statement
            holds[self.path] = False
            _release(self)
        release_idle(self.path)
        with _instances_lock:
            if self.path in _instances:
                return  # other runs of this process use it: the last to finish lets go (waiters are there)
        deadline = time.monotonic() + at_most
        while self._waiters() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _starved(self) -> bool:
        """Whether another process has waited ``FAIR_SECONDS`` for the file (its marker holds when its wait began)."""
        now = time.time()
        return any(now - _waiting_since(marker) >= FAIR_SECONDS for marker in self._waiters())

    def _let_the_starved_in(self) -> None:
        """Before a run takes the file: while another process has waited long for it, wait (the runs under way
        finish, the last one closes the file, the other process takes it and removes its marker). Bounded: a marker
        that never goes away (a process stuck elsewhere) delays a run by 10 s (or ``busy_timeout``) at most."""
        deadline = time.monotonic() + min(self.busy_timeout, 10.0)
        while time.monotonic() < deadline and self._starved():
            time.sleep(0.02)

    def _retry_or_raise(self, exc: duckdb.IOException, deadline: float) -> None:
        """Return to retry a lock conflict within the deadline; raise what to tell the operator otherwise."""
        message = str(exc)
        if not _LOCK_PATTERN.search(message):
            raise StoreUnavailable(
                f"Cannot open the database file {self.path}: {message.splitlines()[0]}",
                "Check that the path is a DuckDB file you can read and write.",
            ) from exc
        if time.monotonic() >= deadline:
            pid = _PID_PATTERN.search(message)
            holder = f"process {pid.group(1)}" if pid else "another process"
            raise StoreBusy(
                f"The database file {self.path} has been busy for {self.busy_timeout:.0f} s: "
                f"{holder} is writing to it (a demo seed, a classification or an import).",
                "Wait for it to finish and try again; nothing was changed.",
            ) from exc

    # -- primitives -------------------------------------------------------------------------------
    def _run_query(self, con: duckdb.DuckDBPyConnection, sql: str, params: Params | None) -> pd.DataFrame:
        rendered = self.dialect.render(sql)
        try:
            frame = con.execute(rendered, _used_params(rendered, params)).df()
        except duckdb.Error as exc:
            raise QueryFailed(f"The query failed in DuckDB: {str(exc).splitlines()[0]}") from exc
        return normalise_frame(frame)

    def _run_execute(self, con: duckdb.DuckDBPyConnection, sql: str, params: Params | None) -> int:
        rendered = self.dialect.render(sql)
        try:
            result = con.execute(rendered, _used_params(rendered, params)).fetchall()
        except duckdb.Error as exc:
            raise QueryFailed(f"The statement failed in DuckDB: {str(exc).splitlines()[0]}") from exc
        # DuckDB answers DML with one row holding the count; DDL answers nothing.
        return int(result[0][0]) if result and result[0] and isinstance(result[0][0], int) else 0

    def query(self, sql: str, params: Params | None = None, *, label: str = "") -> pd.DataFrame:
        with self.connect() as con:
            return self._run_query(con, sql, params)

    def stream(
        self, sql: str, params: Params | None = None, *, chunk: int = 50_000, label: str = ""
    ) -> Iterator[pd.DataFrame]:
        rendered = self.dialect.render(sql)
        with self.connect() as con:
            try:
                reader = con.sql(rendered, params=_used_params(rendered, params)).to_arrow_reader(chunk)
                for batch in reader:
                    yield normalise_frame(batch.to_pandas())
            except duckdb.Error as exc:
                raise QueryFailed(f"The query failed in DuckDB: {str(exc).splitlines()[0]}") from exc

    @contextmanager
    def _writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for a write. What it wrote is checkpointed into the file before the block ends, as closing
        the instance would: the file then stays as it is while the instance lingers (its stamp is the store's
        data version, and another process reads it from the file)."""
        self._writable()
        with self._write_lock, self.connect() as con:
            before = self._file_version()  # the file is open here: no other process writes until the block ends
            try:
                yield con
            finally:
                # Left undone while another thread's transaction is open: closing the instance checkpoints then.
                with contextlib.suppress(duckdb.Error):
                    con.execute("CHECKPOINT")
                self._journal(before)

    def _journal(self, before: str) -> None:
        """Journal a write that said what it changes (``touching``); a write that said nothing is left out, which
        breaks every chain through it (anything may have changed)."""
        declared = _declared(self.path)
        after = self._file_version()
        if not declared or after == before or _identity(after) != _identity(before):
            return  # (another file moved over the path meanwhile: the write went to the one it replaced)
        # Derived only when every open block says so: a rebuild within a resolution's block is the resolution's.
        entry = (before, _bounding([span for span, _ in declared]), all(derived for _, derived in declared))
        with _instances_lock:
            entries = _journals.setdefault(self.path, OrderedDict())
            entries[after] = entry
            entries.move_to_end(after)
            while len(entries) > 2 * JOURNAL_KEPT:
                _rebuilt_elsewhere.get(self.path, set()).discard(entries.popitem(last=False)[0])
        _share(self.path, after, entry)  # still within the write's hold on the file

    @contextmanager
    def touching(self, span: DateSpan | None, *, derived: bool = False) -> Iterator[None]:
        declared = _declared(self.path)
        declared.append((span, derived))
        try:
            yield
        finally:
            declared.pop()

    def _chain(self, version: str) -> list[tuple[str, DateSpan | None, bool]]:
        """The journal's entries back from ``version``, newest first (version before, span, derived), as far as it
        holds them: this process's, then, where they end, those of the journal file (other processes' writes)."""
        out: list[tuple[str, DateSpan | None, bool]] = []
        for last_try in (False, True):
            with _instances_lock:
                entries = _journals.get(self.path) or OrderedDict()
                while len(out) < len(entries) and (entry := entries.get(version)) is not None:
                    out.append(entry)
                    version = entry[0]
            if last_try or not _read_shared(self.path, _identity(version)):
                break
        return out

    def written_between(self, old: str, new: str) -> list[DateSpan] | None:
        spans: list[DateSpan] = []
        if old == new:
            return spans
        for before, span, derived in self._chain(new):
            if span is not None and span != NO_DATES and not derived:
                spans.append(span)
            if before == old:
                return spans
        return None

    def execute(self, sql: str, params: Params | None = None, *, label: str = "") -> int:
        with self._writer() as con:
            return self._run_execute(con, sql, params)

    @contextmanager
    def transaction(self, *, label: str = "") -> Iterator[Transaction]:
        with self._writer() as con:
            con.begin()
            try:
                yield _DuckTransaction(self, con)
            except BaseException:
                con.rollback()
                raise
            con.commit()

    def _run_insert(self, con: duckdb.DuckDBPyConnection, table_ref: str, frame: pd.DataFrame) -> int:
        if frame.empty:
            return 0
        dataset, name = table_ref.split(".")
        target = f"{quote_identifier(dataset, 'duckdb')}.{quote_identifier(name, 'duckdb')}"
        con.register("incoming_frame", frame)
        try:
            con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM incoming_frame")
        except duckdb.Error as exc:
            raise QueryFailed(f"Loading rows into {table_ref} failed: {str(exc).splitlines()[0]}") from exc
        finally:
            con.unregister("incoming_frame")
        return len(frame)

    def insert_frame(self, table_ref: str, frame: pd.DataFrame, *, label: str = "") -> int:
        with self._writer() as con:
            return self._run_insert(con, table_ref, frame)

    def create_dataset(self, dataset: str) -> None:
        with self._writer() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(dataset, 'duckdb')}")

    def existing_tables(self) -> set[str]:
        """The file's tables; remembered per path until the file changes (a page asks several times a run)."""
        version = self.data_version()
        known = _tables_seen.get(self.path)
        if known is not None and known[0] == version:
            return set(known[1])
        with self.connect() as con:
            rows = con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_catalog = current_database()"
            ).fetchall()
        tables = frozenset(f"{schema}.{name}" for schema, name in rows)
        if version == self.data_version():  # not changed while we looked
            _tables_seen[self.path] = (version, tables)
        return set(tables)

    def data_version(self) -> str:
        """The file's stamp (``_file_version``), or the one before the latest writes if all they did was change
        nothing a page reads (declared ``touching(None)``: a visit), as the BigQuery store leaves visits out of its
        version: a sign-in then keeps every cached page."""
        return self._journaled_back(lambda span, derived: span is None)

    def content_version(self) -> str:
        """The data version taken back also over the journaled writes that change no item of any date (the
        operations log, ``NO_DATES``) and over the item index's rebuilds (this process's and, from the journal file,
        other processes'): the nightly job's log lines and its refreshes of the index keep every cached page."""
        # (Another process's line marked derived is trusted here: its writes only rebuilt the index's tables, which no
        # page's answer depends on, whatever version of the index it runs.)
        return self._journaled_back(lambda span, derived: span is None or span == NO_DATES or derived)

    def pipeline_version(self) -> str:
        return self._journaled_back(lambda span, derived: True)

    def _journaled_back(self, passes: Callable[[DateSpan | None, bool], bool]) -> str:
        """The file's stamp, taken back over the journaled writes before it that ``passes`` (their span, and whether
        they only rebuilt the index, here or in another process), up to the first that does not or that the journal
        does not hold."""
        version = self._file_version()
        chain = self._chain(version)  # first: it reads the journal file, and with it other processes' rebuilds
        with _instances_lock:
            rebuilt = _rebuilt_elsewhere.get(self.path, set())
            for before, span, derived in chain:
                if not passes(span, derived or version in rebuilt):
                    break
                version = before
        return version

    def _file_version(self) -> str:
        """The file's stamp (``_stamp``: its device, inode, modification time and size, and its WAL's time and size)
        as text: another file moved over the path (a backup restored) is another version even with the same time and
        size. ``-`` where the file is missing (or the path runs through a file: opening it says what is wrong)."""
        stamp = _stamp(self.path)
        if stamp is None:
            return "-|-"
        return ":".join(map(str, stamp[:4])) + "|" + (":".join(map(str, stamp[4:])) or "-")

    def date_extent(self) -> tuple[dt.date | None, dt.date | None, int, dt.date | None, int]:
        """One statement of the aggregates DuckDB answers from its column statistics without reading the rows (it
        reads them where deletes made the statistics inexact); the scans of every engine only where a date lies
        outside what the dashboard accepts or is implausibly far ahead, which those aggregates cannot separate."""
        if not self.path.exists():
            return None, None, 0, None, 0  # do not create a file just to find it empty
        existing = self.existing_tables()
        tables = [t for t in SourceTable if t.spec.ref in existing]
        if not tables:
            return None, None, 0, None, 0
        sql = "\nUNION ALL\n".join(
            f"SELECT MIN({t.date_column}) AS first_date, MAX({t.date_column}) AS last_date, "
            f"COUNT({t.date_column}) AS n, COUNT(*) - COUNT({t.date_column}) AS undated FROM {t.spec.ref}"
            for t in tables
        )
        frame = self.query(sql, label="bounds")
        plausible = dt.date.today() + dt.timedelta(days=366)
        dated = frame[frame["n"] > 0]
        if any(pd.Timestamp(d).date() < EARLIEST for d in dated["first_date"]) or any(
            pd.Timestamp(d).date() > min(LATEST, plausible) for d in dated["last_date"]
        ):
            return super().date_extent()
        first = min((pd.Timestamp(d).date() for d in dated["first_date"]), default=None)
        last = max((pd.Timestamp(d).date() for d in dated["last_date"]), default=None)
        return first, last, int(frame["n"].sum()), last, int(frame["undated"].sum())
