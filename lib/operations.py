"""The log of every write that is not a status change: who classified, auto-resolved, synced or seeded.

Status changes have their own audit trail (``failure_resolutions``). Everything else that writes (a
classification, a re-classification, an auto-resolve, a status sync, demo data) goes through
:func:`logged`, which refuses an actor who may not write (in ``lib``, whoever calls it) and appends one
row to ``nba_processing.triage_operations`` when the work ends, saying how it ended.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd

from lib.access import require_resolver
from lib.errors import TriageError
from lib.model import EARLIEST, LATEST, Actor
from lib.store.base import NO_DATES, Store

#: What each kind of operation is called when an actor is refused ("may not ...").
KINDS = {
    "classify": "classify failures",
    "reclassify": "re-classify failures",
    "autoresolve": "auto-resolve items",
    "sync-status": "sync failure rows' statuses",
    "demo": "write demo data",
    "init": "create the schema",
    "nightly": "run the nightly job",
    "reindex": "rebuild the item index",
}
MAX_SUMMARY = 2_000
#: The outcome of the line written when an operation begins; its end is a second line (append-only).
STARTED = "started"
#: Each operation once, as it stands: its last line (the end, if one was written; else its start).
#: A start line's end is unknown: shown as NULL (the line stores its start in the NOT NULL column).
_FINISHED = "CASE WHEN outcome = @started THEN NULL ELSE finished_at END AS finished_at"
_LATEST_LINE = "QUALIFY ROW_NUMBER() OVER (PARTITION BY operation_id ORDER BY outcome = @started, finished_at DESC) = 1"


@dataclass
class Operation:
    kind: str
    actor: Actor
    origin: str
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    summary: list[str] = field(default_factory=list)
    operation_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def check(kind: str, actor: Actor | None) -> Actor:
    """The actor, if it may run this kind of operation."""
    return require_resolver(actor, what=KINDS[kind])


@contextmanager
def logged(
    store: Store,
    kind: str,
    actor: Actor | None,
    *,
    origin: str,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    start_line: bool = True,
) -> Iterator[Operation]:
    """Check the actor, record that the operation started, run the block, then record how it ended (also when
    the block failed). A process killed half way leaves its ``started`` line: the log says it began and never
    said it ended."""
    who = check(kind, actor)
    op = Operation(kind, who, origin or "lib", date_from, date_to)
    started = dt.datetime.now(dt.UTC)
    if start_line:  # (not for init: writing the line would create the tables it is about to report)
        _record(store, op, started, STARTED, [], quiet=True)
    try:
        yield op
    except BaseException as exc:
        what = exc.what if isinstance(exc, TriageError) else f"{type(exc).__name__}: {exc}"
        _record(store, op, started, "failed", [*op.summary, what], quiet=True)
        raise
    _record(store, op, started, "done", op.summary, quiet=False)


def _record(
    store: Store, op: Operation, started: dt.datetime, outcome: str, summary: list[str], *, quiet: bool
) -> None:
    row = pd.DataFrame(
        [
            {
                "operation_id": op.operation_id,
                "kind": op.kind,
                "actor": op.actor.name.strip(),
                "origin": op.origin,
                "started_at": started,
                # The column is NOT NULL (tables made before the start line existed): a start line carries its
                # start here, and reads show it as not finished (_FINISHED).
                "finished_at": started if outcome == STARTED else dt.datetime.now(dt.UTC),
                "date_from": op.date_from,
                "date_to": op.date_to,
                "outcome": outcome,
                "summary": " ".join(summary)[:MAX_SUMMARY],
            }
        ]
    )
    try:
        store.init_schema(pipeline_tables=False)
        with store.touching(NO_DATES):  # the log, read by the Operations page: no item of any date
            store.insert_frame("nba_processing.triage_operations", row, label="operations")
    except TriageError as exc:
        if not quiet:  # the work itself is done and kept; the missing log line is said, not hidden
            raise TriageError(
                f"The {op.kind} is done, but its line in the operations log could not be written: {exc.what}",
                "Nothing of the work is lost; the log misses this one entry.",
            ) from exc


def recent(store: Store, *, limit: int = 200) -> pd.DataFrame:
    """The latest operations, newest first."""
    if "nba_processing.triage_operations" not in store.existing_tables():
        return pd.DataFrame(columns=["started_at", "finished_at", "kind", "actor", "origin", "date_from", "date_to",
                                     "outcome", "summary", "operation_id"])  # fmt: skip
    return store.query(
        f"SELECT started_at, {_FINISHED}, kind, actor, origin, date_from, date_to, outcome, summary, operation_id "
        f"FROM nba_processing.triage_operations WHERE DATE(started_at) BETWEEN @a AND @b {_LATEST_LINE} "
        "ORDER BY started_at DESC, operation_id LIMIT @n",
        {"a": EARLIEST, "b": LATEST, "n": limit, "started": STARTED},
        label="operations",
    )


def latest(store: Store, kind: str) -> pd.Series | None:
    """The most recent operation of ``kind`` (e.g. the nightly job), or None if it never ran."""
    if "nba_processing.triage_operations" not in store.existing_tables():
        return None
    frame = store.query(
        f"SELECT started_at, {_FINISHED}, kind, actor, origin, outcome, summary FROM nba_processing.triage_operations "
        f"WHERE kind = @kind AND DATE(started_at) BETWEEN @a AND @b {_LATEST_LINE} "
        "ORDER BY started_at DESC, operation_id LIMIT 1",
        {"kind": kind, "a": EARLIEST, "b": LATEST, "started": STARTED},
        label="operations",
    )
    return frame.iloc[0] if len(frame) else None


__all__ = ["KINDS", "Operation", "check", "latest", "logged", "recent"]
