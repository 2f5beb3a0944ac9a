"""Each page run's time in the server's log: the time to take the database file (another process's turn, the gate of
``DuckDBStore.held``) and the whole run. A run slower than ``TRIAGE_SLOW_RUN_SECONDS`` (5 s) is a warning, so that an
operator who hears "the dashboard was slow this morning" finds when and where; with ``TRIAGE_LOG_RUNS=1`` every run
is logged (bench/load.py reads them to tell the server's share of a page's time from the browser's)."""

from __future__ import annotations

import logging
import os
import sys
import time

from streamlit.runtime.scriptrunner import get_script_run_ctx

log = logging.getLogger("triage.runs")
log.propagate = False  # its own line on stderr, whatever the root logger is set to
log.setLevel(logging.INFO)
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
log.addHandler(_handler)


def _threshold() -> float:
    try:
        return float(os.environ.get("TRIAGE_SLOW_RUN_SECONDS", "5"))
    except ValueError:
        return 5.0


class RunClock:
    """Started as the run begins; ``has_file`` once the run holds the database file; ``done`` as it ends, however
    it ends (a rerun or a stop ends a run by an exception: ``done`` is called from a ``finally``)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.file_at: float | None = None

    def has_file(self) -> None:
        self.file_at = time.perf_counter()

    def done(self, page: str) -> None:
        seconds = time.perf_counter() - self.started
        slow = seconds >= _threshold()
        if not slow and os.environ.get("TRIAGE_LOG_RUNS") != "1":
            return
        ctx = get_script_run_ctx()
        session = ctx.session_id[:8] if ctx is not None else "-"
        error = sys.exc_info()[1]
        ended = "done" if error is None else type(error).__name__
        waited = "-" if self.file_at is None else f"{self.file_at - self.started:.3f}"
        log.log(logging.WARNING if slow else logging.INFO,
                "run page=%s seconds=%.3f file_wait=%s ended=%s session=%s", page or "overview", seconds, waited,
                ended, session)  # fmt: skip
