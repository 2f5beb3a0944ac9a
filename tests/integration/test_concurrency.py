"""The dashboard (threads) and the command line (another process) share one DuckDB file."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lib.errors import StoreBusy
from lib.model import Actor, Filters, Page
from lib.store import DuckDBStore, duckdb_store
from lib.store import queries as q
from lib.store.duckdb_store import release_idle
from tests.conftest import ROOT, Writer, precompute_row


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens the file for writing and keeps it for ``seconds``. It does not wait for the file
    (a bare DuckDB client): this process lets go of it first (it keeps it open briefly after its last operation)."""
    release_idle(path)
    code = textwrap.dedent(
        f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r})
        con.execute("CREATE TABLE IF NOT EXISTS held (x INT)")
        print("locked", flush=True)
        time.sleep({seconds})
        con.close()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@contextmanager
def _waiting(store: DuckDBStore, suffix: str, *, for_seconds: float = 0.0) -> Iterator[Path]:
    """The marker of a live process (this one's parent) that began to wait for the file ``for_seconds`` ago, as a
    waiting process leaves it and refreshes it between its tries, until the block ends (the other process then has
    the file)."""
    marker = store.path.with_name(f"{store.path.name}.waiting-{os.getppid()}-{suffix}")
    marker.write_text(f"{time.time() - for_seconds:.3f}")
    over = threading.Event()

    def refresh() -> None:
        while not over.wait(0.2):
            with contextlib.suppress(FileNotFoundError):
                os.utime(marker)

    beat = threading.Thread(target=refresh, daemon=True)
    beat.start()
    try:
        yield marker
    finally:
        over.set()
        beat.join()
        marker.unlink(missing_ok=True)


def test_a_reader_waits_for_another_process_and_then_succeeds(store: DuckDBStore, write_rows: Writer) -> None:
    write_rows("precompute_failures", [precompute_row()])
    holder = _hold_lock(store.path, 1.5)
    started = time.monotonic()
    assert q.count_items(store, Filters(hide_expected=False)) == 1
    waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert waited > 0.5  # it really waited for the other process instead of failing


def test_a_long_lock_becomes_a_clear_busy_message_not_a_lock_error(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "busy.duckdb", busy_timeout=0.6)
    store.init_schema()
    holder = _hold_lock(store.path, 4)
    try:
        with pytest.raises(StoreBusy) as caught:
            store.query("SELECT 1 AS x")
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert "busy" in message and "nothing was changed" in message
    assert str(holder.pid) in message
    assert "IO Error" not in message


def test_many_threads_read_and_write_at_once_without_losing_a_row(store: DuckDBStore) -> None:
    errors: list[BaseException] = []
    import pandas as pd

    def writer(n: int) -> None:
        try:
            for i in range(10):
                frame = pd.DataFrame([precompute_row(entity_id=f"t{n}-{i}")])
                frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
                store.insert_frame("nba_processing.precompute_failures", frame)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(10):
                q.list_items(store, Filters(hide_expected=False), Page(size=10))
                q.kpis(store, Filters())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert q.count_items(store, Filters(hide_expected=False)) == 40


def test_the_command_line_and_a_reader_share_the_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.duckdb"
    cli = subprocess.Popen(
        [sys.executable, "-m", "lib", "demo", "--db", str(db), "--actor", "system"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    store = DuckDBStore(db, busy_timeout=60)
    seen = 0
    while cli.poll() is None:
        if db.exists():
            seen = max(seen, q.bounds(store).rows)  # reads between the command's writes
        time.sleep(0.05)
    out, err = cli.communicate()
    assert cli.returncode == 0, err
    assert "failure rows" in out
    assert q.bounds(store).rows > 40_000


def _closed(path: Path, within: float = 30.0) -> bool:
    """Whether this process has let go of the file (waiting for its linger to end, on a busy machine too)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path not in duckdb_store._instances:
            return True
        time.sleep(0.05)
    return False


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths DuckDBStore opens from now on, in order."""
    opened: list[Path] = []
    real_open = DuckDBStore._open

    def counting_open(self: DuckDBStore) -> object:
        opened.append(self.path)
        return real_open(self)

    monkeypatch.setattr(DuckDBStore, "_open", counting_open)
    return opened


def test_operations_back_to_back_open_the_file_once_and_let_it_go_after(
    store: DuckDBStore, write_rows: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rows("precompute_failures", [precompute_row()])
    opened = _count_opens(monkeypatch)
    assert _closed(store.path)
    for _ in range(20):
        assert q.count_items(store, Filters(hide_expected=False)) == 1
    assert opened == [store.path]  # one open for twenty reads, not twenty
    assert _closed(store.path)  # and let go of once idle: a bare DuckDB client (no retries) gets it
    other = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(store.path)!r}).close()"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert other.returncode == 0, other.stderr


def test_a_waiting_process_is_let_in_at_once_not_after_the_linger(store: DuckDBStore, write_rows: Writer) -> None:
    write_rows("precompute_failures", [precompute_row()])
    with _waiting(store, "1"):  # a live process that waits
        q.count_items(store, Filters(hide_expected=False))
        assert store.path not in duckdb_store._instances  # closed with the operation, as before the linger


@pytest.mark.parametrize("how", ["copied over", "moved over"])
def test_a_file_replaced_while_this_process_keeps_it_open_is_read_afresh(tmp_path: Path, how: str) -> None:
    path, other = tmp_path / "shown.duckdb", tmp_path / "other.duckdb"
    for db, n in ((path, 3), (other, 7)):
        s = DuckDBStore(db)
        s.execute("CREATE TABLE main.t AS SELECT * FROM range(@n) AS r(x)", {"n": n})
    duckdb_store.release_idle()
    shown = DuckDBStore(path)
    assert int(shown.query("SELECT COUNT(*) AS n FROM main.t")["n"].iloc[0]) == 3  # open, and kept open
    assert path in duckdb_store._instances
    if how == "copied over":
        shutil.copy(other, path)
    else:
        os.replace(other, path)
    assert int(shown.query("SELECT COUNT(*) AS n FROM main.t")["n"].iloc[0]) == 7
    shown.execute("INSERT INTO main.t VALUES (99)")
    duckdb_store.release_idle()
    check = subprocess.run([sys.executable, "-c", f"import duckdb; print(duckdb.connect({str(path)!r}, "
                            "read_only=True).execute('SELECT COUNT(*) FROM t').fetchone()[0])"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert check.stdout.strip() == "8", check.stderr  # the write went into the new file, and reached the disk


def test_eight_sessions_reading_at_once_each_see_what_they_read_alone(classified: DuckDBStore) -> None:
    """Eight people open the dashboard together on the morning the item index must be rebuilt (its fingerprints
    dropped): each thread's pages (the overview's cube, a list page, what changed, a player's items) equal what
    that view reads alone from the failure rows, however the threads interleave on the one database instance."""
    import datetime as dt
    import random

    from lib import briefing, players
    from lib.store import index

    now = dt.datetime(2022, 4, 11, 12, 0, tzinfo=dt.UTC)
    every = q.list_items(classified, Filters(hide_expected=False), Page(1, 1000, "most occurrences"))
    rng = random.Random(8)
    dates = sorted(every["item_date"].unique())
    views = []
    for n in range(8):
        first = rng.choice(dates[: len(dates) // 2])
        views.append(
            (
                Filters(date_from=first, date_to=first + dt.timedelta(days=rng.choice((7, 30, 120))),
                        hide_expected=n % 2 == 0, processors=tuple(rng.sample(sorted(set(every["processor_name"])),
                                                                                 2)) if n % 3 == 0 else ()),
                str(rng.choice(list(every["entity_id"]))),
                now - dt.timedelta(hours=rng.choice((24, 72, 24 * 30))),
            )
        )  # fmt: skip

    def pages(f: Filters, player: str, since: dt.datetime) -> tuple[object, ...]:
        b = briefing.brief(classified, f, now=now, since=since)
        cube = q.summary(classified, f)
        return (
            cube.sort_values(list(cube.columns)).to_csv(index=False),
            q.list_items(classified, f, Page(2, 25, "most occurrences")).to_csv(index=False),
            (b.counts, b.previous, b.kpis_now, b.kpis_then, b.settled_by.to_csv(index=False)),
            players.items(classified, player, f).to_csv(index=False),
        )

    with index.bypassed(classified):
        alone = [pages(*view) for view in views]
    classified.execute("DELETE FROM nba_processing.failure_index_dates WHERE TRUE")
    index.forget(classified)
    got: dict[int, list[tuple[object, ...]]] = {n: [] for n in range(8)}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def session(n: int) -> None:
        try:
            start.wait(timeout=60)
            for _ in range(3):
                got[n].append(pages(*views[n]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert errors == []
    for n in range(8):
        assert got[n] == [alone[n]] * 3, f"session {n} read something else than its view alone"
    index.forget(classified)  # each view's dates were rebuilt once, by whichever session came first, and left fresh
    assert [index.ensure(classified, f.date_from, f.date_to).refreshed_dates for f, _, _ in views] == [0] * 8


def test_a_run_keeps_the_file_between_its_statements_and_lets_a_waiting_process_in_at_its_end(
    store: DuckDBStore, write_rows: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rows("precompute_failures", [precompute_row()])
    assert q.count_items(store, Filters(hide_expected=False)) == 1  # the item index built (its writes let waiters in)
    release_idle(store.path)
    opened = _count_opens(monkeypatch)
    with _waiting(store, "1"):  # a live process that just began to wait
        with store.held():
            for _ in range(5):
                assert q.count_items(store, Filters(hide_expected=False)) == 1
                assert store.path in duckdb_store._instances  # not let go between the run's statements
        assert store.path not in duckdb_store._instances  # let go at the run's end, at once: somebody waits
        assert opened == [store.path]
        q.count_items(store, Filters(hide_expected=False))  # outside a run, each statement lets go as before
        assert store.path not in duckdb_store._instances


def test_a_run_waits_to_start_while_another_process_has_waited_long_for_the_file(
    store: DuckDBStore, write_rows: Writer
) -> None:
    write_rows("precompute_failures", [precompute_row()])
    assert q.count_items(store, Filters(hide_expected=False)) == 1  # the item index built: the run only reads
    began: list[float] = []

    def run() -> None:
        with store.held():
            began.append(time.monotonic())
            q.count_items(store, Filters(hide_expected=False))

    thread = threading.Thread(target=run)
    with _waiting(store, "2", for_seconds=duckdb_store.FAIR_SECONDS + 1):
        thread.start()
        time.sleep(1.0)  # the other process still waits
        gone = time.monotonic()  # then it has the file (and lets go of it): its marker goes
    thread.join(timeout=30)
    assert len(began) == 1 and began[0] >= gone  # the run began only once the other process had its turn


def test_a_marker_left_by_a_killed_waiter_holds_nobody_up(store: DuckDBStore, write_rows: Writer) -> None:
    """A process killed while it waited leaves its marker, under a number another process may have by now (here:
    a live one). Not refreshed for ``STALE_SECONDS``, it no longer counts as a wait and is removed; a marker of the
    same age that is still refreshed counts."""
    write_rows("precompute_failures", [precompute_row()])
    left = store.path.with_name(f"{store.path.name}.waiting-{os.getppid()}-3")
    left.write_text(f"{time.time() - 60:.3f}")
    long_ago = time.time() - duckdb_store.STALE_SECONDS - 1
    os.utime(left, (long_ago, long_ago))
    try:
        with _waiting(store, "4", for_seconds=60) as waiting:
            assert store._waiters() == [waiting] and store._starved()
            assert not left.exists()
        assert store._waiters() == [] and not store._starved()
    finally:
        left.unlink(missing_ok=True)


def test_a_run_that_found_the_file_busy_says_so_at_once_rather_than_waiting_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DuckDBStore(tmp_path / "busy.duckdb", busy_timeout=0.6)
    store.init_schema()
    holder = _hold_lock(store.path, 6)
    tries: list[float] = []
    real_open = DuckDBStore._open

    def counted(self: DuckDBStore) -> object:
        tries.append(time.monotonic())
        return real_open(self)

    monkeypatch.setattr(DuckDBStore, "_open", counted)
    try:
        with store.held():
            assert len(tries) == 1  # the run tried to take the file, for the whole busy timeout
            for _ in range(2):
                with pytest.raises(StoreBusy) as caught:
                    store.query("SELECT 1 AS x")
                assert "busy" in str(caught.value) and str(holder.pid) in str(caught.value)
            assert len(tries) == 1  # its statements did not wait again
        assert duckdb_store._run_holds() == {}
    finally:
        holder.kill()
        holder.wait()


def test_the_nightly_job_writes_between_runs_never_within_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process writes in batches that each keep the file a while and lets waiters in between them (as the
    nightly job does); this process's runs read it again and again meanwhile. Each run reads one state of the file
    from its first statement to its last, and the job still finishes every batch, without a busy error."""
    monkeypatch.setattr(duckdb_store, "FAIR_SECONDS", 1.0)  # each batch waits for the gate: 1 s, not 3, in a test
    db = tmp_path / "turns.duckdb"
    DuckDBStore(db).execute("CREATE TABLE main.batches AS SELECT 0 AS n")
    release_idle(db)
    job = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from lib.store import DuckDBStore
            store = DuckDBStore({str(db)!r}, busy_timeout=60)
            for n in range(1, 7):
                with store.transaction() as tx:
                    tx.execute("UPDATE main.batches SET n = @n", {{"n": n}})
                    time.sleep(0.3)
                store.let_waiters_in()
            print("done", flush=True)
        """)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    store = DuckDBStore(db, busy_timeout=60)
    runs: list[list[int]] = []
    while job.poll() is None:
        with store.held():
            seen = []
            for _ in range(4):
                seen.append(int(store.query("SELECT n FROM main.batches")["n"].iloc[0]))
                time.sleep(0.05)  # the page's own work between its statements
            runs.append(seen)
    out, err = job.communicate(timeout=120)
    assert job.returncode == 0 and out.strip() == "done", err
    assert [run for run in runs if len(set(run)) > 1] == []  # no run saw a batch land in its middle
    assert len({run[0] for run in runs}) >= 3  # and the runs did see the job's batches land between them
    assert int(store.query("SELECT n FROM main.batches")["n"].iloc[0]) == 6


def test_a_refresh_of_the_item_index_takes_smaller_steps_while_another_process_waits(
    store: DuckDBStore, write_rows: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nightly job's refresh of its dates held the file three seconds at a time at 10M rows while the dashboard
    waited: while another process waits, each step is at most ``SHARED_CHUNK_ROWS`` failure rows (here one date), so
    the waiter has its turn between them; with nobody waiting, or within a dashboard page's run (people wait for it,
    and the job has its turn between runs), one step. The index reads as the rows either way."""
    from lib.store import index

    days = [f"2022-03-{d:02d}" for d in range(1, 7)]
    rows = [precompute_row(analysis_date=d, entity_id=f"p{n}") for d in days for n in range(3)]
    write_rows("precompute_failures", rows)
    steps: list[list[object]] = []
    rebuild = index._rebuild
    monkeypatch.setattr(index, "_rebuild", lambda s, table, dates, *a: steps.append(list(dates)) or rebuild(s, table,
                        dates, *a))  # fmt: skip
    monkeypatch.setattr(index, "SHARED_CHUNK_ROWS", 3)  # a date's rows
    monkeypatch.setattr(DuckDBStore, "let_waiters_in", lambda self, **_: None)  # the marker's process never takes it
    whole = Filters(date_from=dt.date(2022, 3, 1), date_to=dt.date(2022, 3, 6))
    assert not store.others_waiting()
    index.ensure(store, whole.date_from, whole.date_to)
    assert len(steps) == 1 and len(steps[0]) == 6
    steps.clear()
    with _waiting(store, "refresh"):
        assert store.others_waiting()
        index.reindex(store, whole.date_from, whole.date_to, actor=Actor("alice"))
    assert sorted(len(s) for s in steps) == [1] * 6
    steps.clear()
    with _waiting(store, "page"), store.held():  # a page's own refresh: people wait for it, its steps stay whole
        assert store.in_dashboard_run() and store.others_waiting()
        index.reindex(store, whole.date_from, whole.date_to, actor=Actor("alice"))
    assert [len(s) for s in steps] == [6]
    with index.bypassed(store):
        computed = q.list_items(store, whole, Page(1, 50, "newest date"))
    assert q.list_items(store, whole, Page(1, 50, "newest date")).equals(computed)


def test_a_file_moved_over_the_database_is_read_at_once_not_the_one_it_replaced(
    store: DuckDBStore, write_rows: Writer, tmp_path: Path
) -> None:
    """A backup restored over the database (``mv``) within the moment this process keeps the file open after an
    operation: the next read opens the file now at the path, not the one it replaced (the instance kept was reused
    while its stamp, taken after the move, matched the new file's)."""
    write_rows("precompute_failures", [precompute_row(entity_id="before")])
    release_idle(store.path)
    backup = tmp_path / "backup.duckdb"
    shutil.copy(store.path, backup)
    other = DuckDBStore(backup)
    other.execute("UPDATE nba_processing.precompute_failures SET entity_id = 'restored'")
    release_idle(backup)
    count = "SELECT entity_id FROM nba_processing.precompute_failures"
    with store.connect():  # an operation under way as the file is moved over the path
        os.replace(backup, store.path)
    assert list(store.query(count)["entity_id"]) == ["restored"]
