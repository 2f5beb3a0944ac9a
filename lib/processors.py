"""For the pipeline's processors: record a run's failures already classified, in one step.

    from lib.access import SYSTEM
    from lib.processors import record_failures
    record_failures(store, "precompute_failures", rows, actor=SYSTEM, now=datetime.now(UTC))

(``SYSTEM`` where unattended work is configured: TRIAGE_SYSTEM_USERS lists the account the processor runs as.)

The rows are the processor's own failure rows (the table's columns, without the classifier's). They are
judged against the evidence tables and written with ``failure_type``, ``is_correctable`` and, for
phase 4, the expected and actual game counts, the missing game dates and ``raw_data_checked``; the
per-game evidence goes to ``nba_processing.failure_missing_games``. Calling it again for the same run
replaces what that run wrote before, so a retried run never duplicates its failures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lib.access import require_resolver
from lib.classification import _write_verdicts, classify_batch, failure_from_item
from lib.classifier import ClassifierConfig
from lib.errors import BadInput
from lib.model import Actor, SourceTable, Verdict
from lib.store import index
from lib.store.base import Store

_REQUIRED = ("processor_name", "run_id", "entity_id", "failure_category", "failure_reason", "can_retry")
# A rerun replaces its own rows: generated from each table's spec (lib/model.py), identifiers only.
_DELETE_RUN = {
    t: f"""
DELETE FROM {t.spec.ref}
WHERE {t.date_column} BETWEEN @date_from AND @date_to
  AND processor_name IN UNNEST(@processors) AND run_id IN UNNEST(@runs)"""
    for t in SourceTable
}


def _validated(table: SourceTable, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    date_column = table.date_column
    out = []
    for n, row in enumerate(rows, start=1):
        missing = [c for c in (*_REQUIRED, date_column) if row.get(c) in (None, "")]
        if table is SourceTable.ANALYTICS and not row.get("entity_type"):
            missing.append("entity_type")
        if missing:
            raise BadInput(f"Failure row {n} lacks {', '.join(missing)}.", "Every required column needs a value.")
        day = row[date_column]
        if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
            try:
                day = dt.date.fromisoformat(str(day))
            except ValueError as exc:
                raise BadInput(f"Failure row {n}: {date_column} {str(day)[:40]!r} is not a date.") from exc
        out.append({**row, date_column: day})
    return out


def record_failures(
    store: Store,
    table: SourceTable | str,
    rows: Sequence[Mapping[str, Any]],
    *,
    actor: Actor | None,
    now: dt.datetime,
    config: ClassifierConfig | None = None,
) -> list[Verdict]:
    """Classify and write one run's failure rows; returns their verdicts in the order given. ``actor`` is who
    records them (a processor's service identity, or ``system`` where it is configured): a resolver."""
    require_resolver(actor, what="record failure rows")
    try:
        source = SourceTable(table)
    except ValueError as exc:
        raise BadInput(f"Unknown failure table {str(table)[:60]!r}.") from exc
    checked = _validated(source, rows)
    if not checked:
        return []
    config = config or ClassifierConfig()
    date_column = source.date_column
    failures = [
        failure_from_item(
            {
                "source_table": source.value,
                "processor_name": r["processor_name"],
                "item_date": r[date_column],
                "entity_id": r["entity_id"],
                "entity_type": r.get("entity_type"),
                "failure_category": r["failure_category"],
                "can_retry": r["can_retry"],
                "missing_json": r.get(source.spec.missing_column),
                "latest_run_id": r["run_id"],
            }
        )
        for r in checked
    ]
    store.init_schema(pipeline_tables=False)
    judged = classify_batch(store, failures, config)
    frame = pd.DataFrame(checked)
    # The table's defaults, as BigQuery would apply them: UNRESOLVED, and the time of the write.
    for column, default in (("resolution_status", "UNRESOLVED"), ("created_at", pd.Timestamp(now))):
        frame[column] = frame[column].fillna(default) if column in frame else default
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    params = {
        "date_from": min(r[date_column] for r in checked),
        "date_to": max(r[date_column] for r in checked),
        "processors": sorted({str(r["processor_name"]) for r in checked}),
        "runs": sorted({str(r["run_id"]) for r in checked}),
    }
    with store.transaction(label="record-failures") as tx:
        tx.execute(_DELETE_RUN[source], params)
        tx.insert_frame(source.spec.ref, frame)
        _write_verdicts(tx, judged, now=now, overwrite=True)
    index.after_write(store, params["date_from"], params["date_to"])
    return [v for _, v in judged]
