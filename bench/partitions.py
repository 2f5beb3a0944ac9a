"""BigQuery bytes of the item index's freshness check on the first load after a change, with and without the
partition metadata (issue 23, item 4), from the columns' sizes in a DuckDB copy of the data.

    python bench/partitions.py --db data/triage.duckdb [--changed 1]

The check runs before any page reads the index, whenever the data version moved (a processor run, a resolution).
Without metadata it fingerprints every date in view: the fingerprinted columns of every failure row in range, the
status events in range, the stored fingerprints. With BigQuery's ``INFORMATION_SCHEMA.PARTITIONS`` it reads the
metadata (no table data; billed as BigQuery's 10 MB minimum) and the stored fingerprints and check times, then
fingerprints only the dates written since their last check (here the latest ``--changed`` dates, as after a
nightly run), and stamps the check time of those found current (counted here, though a rebuilt date needs none).
Sizes are BigQuery's documented ones (bench/overview.py ``bigquery_bytes``): the emulator reports no bytes.
"billed" applies the on-demand minimum of 10 MB per table a query references. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overview import bigquery_bytes  # noqa: E402
from lib.model import Filters, SourceTable  # noqa: E402
from lib.store import DuckDBStore  # noqa: E402

MIN_BILLED = 10 * 1024**2
FINGERPRINTED = ["processor_name", "entity_id", "run_id", "failure_category", "failure_type", "is_correctable",
                 "resolution_status", "resolved_at", "created_at"]  # fmt: skip
EVENTS = ["source_table", "item_date", "event_id", "to_status", "at"]


def _check(store: DuckDBStore, lo: dt.date, hi: dt.date, *, stored: list[str]) -> list[int]:
    """Bytes per table a fingerprint pass over [lo, hi] reads: the three failure tables, the events, the stored."""
    f = Filters(date_from=lo, date_to=hi)
    parts = [bigquery_bytes(store, t.value, [t.date_column, *FINGERPRINTED], t.date_column, f) for t in SourceTable]
    parts.append(bigquery_bytes(store, "failure_resolutions", EVENTS, "item_date", f))
    parts.append(_stored(store, lo, hi, stored))
    return parts


def _stored(store: DuckDBStore, lo: dt.date, hi: dt.date, columns: list[str]) -> int:
    extra = 8 if "checked_at" in columns else 0  # a TIMESTAMP; older databases lack the column
    base = [c for c in columns if c != "checked_at"]
    n = store.query("SELECT COUNT(*) AS n FROM nba_processing.failure_index_dates WHERE item_date BETWEEN @a AND @b",
                    {"a": lo, "b": hi})["n"].iloc[0]  # fmt: skip
    f = Filters(date_from=lo, date_to=hi)
    return bigquery_bytes(store, "failure_index_dates", base, "item_date", f) + extra * int(n)


def _billed(parts: list[int]) -> int:
    return sum(max(p, MIN_BILLED) for p in parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--changed", type=int, default=1, help="dates written since the last check (latest ones)")
    args = parser.parse_args()
    store = DuckDBStore(Path(args.db), create=False)
    first, last, rows = store.date_bounds()
    assert first and last, "no failure rows"
    changed_from = last - dt.timedelta(days=args.changed - 1)
    print(f"{args.db}: {rows:,} failure rows, {first} to {last}; {args.changed} date(s) written since the last check")
    print(f"{'view':<14} {'':<22} {'processed':>12} {'billed':>12}")
    for view, lo in (("latest 30 days", last - dt.timedelta(days=29)), ("whole history", first)):
        full = _check(store, lo, last, stored=["source_table", "item_date", "fingerprint", "changed_at"])
        meta = [0]  # INFORMATION_SCHEMA.PARTITIONS: metadata (no table data), billed at the minimum
        meta.append(_stored(store, lo, last, ["source_table", "item_date", "fingerprint", "checked_at"]))
        meta += _check(store, changed_from, last, stored=["source_table", "item_date", "fingerprint", "changed_at"])
        meta.append(_stored(store, changed_from, last, ["item_date", "checked_at"]))  # the UPDATE of check times
        for name, parts in (("before: every date", full), ("after: metadata", meta)):
            print(f"{view:<14} {name:<22} {sum(parts) / 1e6:>9.1f} MB {_billed(parts) / 1e6:>9.1f} MB")


if __name__ == "__main__":
    main()
