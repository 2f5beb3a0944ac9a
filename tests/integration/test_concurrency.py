"""The dashboard (threads) and the command line (another process) share one DuckDB file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lib.errors import StoreBusy
from lib.model import Filters, Page
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT, Writer, precompute_row


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens the file for writing and keeps it for ``seconds``."""
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
