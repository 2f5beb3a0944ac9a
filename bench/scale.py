"""1M, 10M and 30M failure rows side by side: the pages cold and warm, the upkeep, the peak memory.

    python bench/scale.py [--sizes 1M,10M,30M] [--repeat 3] [--dir bench/out] [--reindex]

For each size, the benchmark database of bench/overview.py (the demo season plus synthetic rows generated in the
engine; seeded on first use, and its item index built then, timed: the reindex) is measured in a process of its
own, so that its peak memory is its own:

* the baseline: the bare grouped count (one GROUP BY processor, category over the failure table) over the latest
  30 days and over the whole history, measured in the same process;
* pages in Streamlit's AppTest (the code the server runs, its caches in the same process): the overview over the
  latest 30 days and over the whole history, cold (empty caches) and warm (cached results); the failure list;
  the player page of the player with the most failures; Settling over the whole history; Incidents over the
  latest 30 days (when there are incidents);
* the peak resident memory of that process after the pages (what one dashboard server holds for them);
* on a copy of the database: the day after a full backfill (one new row on every date of the history, written
  by a processor's run, the item index refreshed over the whole history as the nightly upkeep does, then the
  overview over the whole history cold: every date has changed since the comparison point), and the refresh
  after a 10k-row processor run on the latest date.

Every time is the median of --repeat runs, printed beside its ratio to the bare count over the same range, and
the largest size's figure is printed as a ratio to the one before it. Figures are printed, never asserted: the
machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from bench.overview import BARE, app_run_seconds, median_seconds, refresh_after_run, seed  # noqa: E402
from lib import demo  # noqa: E402
from lib import incidents as inc  # noqa: E402
from lib.access import SYSTEM  # noqa: E402
from lib.model import Filters  # noqa: E402
from lib.store import DuckDBStore, index  # noqa: E402
from lib.store import queries as q  # noqa: E402

#: (key, label, the baseline it is compared with)
ROWS = [
    ("overview_30_cold", "overview, latest 30 days, cold", "bare_30"),
    ("overview_30_warm", "overview, latest 30 days, warm", "bare_30"),
    ("overview_all_cold", "overview, whole history, cold", "bare_all"),
    ("overview_all_warm", "overview, whole history, warm", "bare_all"),
    ("backfill_all_cold", "overview, whole history, cold, the day after a full backfill", "bare_all"),
    ("failures_cold", "failure list (latest 30 days), cold", "bare_30"),
    ("failures_warm", "failure list (latest 30 days), warm", "bare_30"),
    ("player_cold", "player page (most failures), cold", "bare_all"),
    ("settling_all_cold", "Settling, whole history, cold", "bare_all"),
    ("settling_all_warm", "Settling, whole history, warm", "bare_all"),
    ("incidents_30_cold", "Incidents, latest 30 days, cold", "bare_30"),
    ("backfill_refresh", "index refresh after the full backfill", "bare_all"),
    ("run_refresh", "index refresh after a 10k-row run", "bare_30"),
    ("reindex", "full reindex (at seeding)", "bare_all"),
]


def _url(f: Filters) -> dict[str, str]:
    assert f.date_from and f.date_to
    return {"from": f.date_from.isoformat(), "to": f.date_to.isoformat()}


def _pages(path: Path, repeat: int) -> dict[str, float]:
    """Every page's median seconds, cold and warm, on this database (read only)."""
    store = DuckDBStore(path)
    b = q.bounds(store)
    assert b.first_date and b.last_date, "an empty benchmark database"
    start, end = b.default_range() or (b.first_date, b.last_date)
    recent, whole = Filters(date_from=start, date_to=end), Filters(date_from=b.first_date, date_to=b.last_date)
    index.ensure(store, b.first_date, b.last_date)
    app_run_seconds(path, False, "", _url(recent))  # imports and first compiles, which a server pays once
    t: dict[str, float] = {}
    for key, f in (("bare_30", recent), ("bare_all", whole)):
        t[key] = median_seconds(lambda f=f: store.query(BARE, {"date_from": f.date_from, "date_to": f.date_to}), repeat)

    def page(name: str, view: str, params: dict[str, str]) -> None:
        for warmth in ("cold", "warm"):
            runs = [app_run_seconds(path, warmth == "warm", view, params) for _ in range(repeat)]
            t[f"{name}_{warmth}"] = statistics.median(runs)

    page("overview_30", "", _url(recent))
    page("overview_all", "", _url(whole))
    page("failures", "views/triage/failures.py", _url(recent))
    top = store.query(
        "SELECT entity_id FROM nba_processing.precompute_failures GROUP BY entity_id ORDER BY COUNT(*) DESC, "
        "entity_id LIMIT 1",
        {},
    )
    page("player", "views/triage/player.py", {"player": str(top["entity_id"].iloc[0])})
    page("settling_all", "views/triage/settling.py", _url(whole))
    now = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(9), tzinfo=dt.UTC)
    if len(inc.incidents(store, recent, now=now)):
        page("incidents_30", "views/triage/incidents.py", _url(recent))
    t["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return t


def backfill(store: DuckDBStore, first: dt.date, last: dt.date) -> float:
    """A processor's backfill run: one new row on every date from ``first`` to ``last``, then the upkeep's refresh
    of that range. Returns the refresh's seconds."""
    days = pd.date_range(first, last, freq="D").date
    frame = pd.DataFrame({
        "processor_name": "PlayerDailyCacheProcessor", "run_id": f"bench-backfill-{time.time_ns()}",
        "analysis_date": days, "entity_id": "benchbackfill", "failure_category": "INCOMPLETE_DATA",
        "failure_reason": "bench backfill", "can_retry": True, "resolution_status": "UNRESOLVED",
        "created_at": pd.Timestamp.now(tz="UTC"),
    })  # fmt: skip
    store.insert_frame("nba_processing.precompute_failures", frame)
    started = time.perf_counter()
    done = index.after_write(store, first, last)
    elapsed = time.perf_counter() - started
    assert done.refreshed_dates >= len(days) * 0.9, done
    return elapsed


def _writes(path: Path, repeat: int) -> dict[str, float]:
    """On a copy: the day after a full backfill (refresh, then the overview cold), and a 10k-row run's refresh."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        copy = Path(tmp) / path.name
        shutil.copy(path, copy)
        store = DuckDBStore(copy)
        b = q.bounds(store)
        assert b.first_date and b.last_date
        t = {"backfill_refresh": backfill(store, b.first_date, b.last_date)}
        whole = _url(Filters(date_from=b.first_date, date_to=b.last_date))
        t["backfill_all_cold"] = statistics.median(app_run_seconds(copy, False, "", whole) for _ in range(repeat))
        t["run_refresh"] = refresh_after_run(store, b.last_date, 10_000)
        return t


def measure(path: Path, repeat: int) -> dict[str, float]:
    """In this process: the pages (and the peak memory after them), then the writes on a copy."""
    t = _pages(path, repeat)
    t.update(_writes(path, repeat))
    return t


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".reindex.json")


def prepare(path: Path, label: str, force_reindex: bool) -> None:
    """Seed the database if needed, and build its item index from nothing, timed, once (or with --reindex)."""
    rows = demo.parse_scale(label)
    seeded = seed(path, rows)
    if seeded:
        print(f"# {label}: seeded {rows:,} rows in {seeded:.0f} s", flush=True)
    if seeded or force_reindex or not _sidecar(path).exists():
        store = DuckDBStore(path)
        store.init_schema(pipeline_tables=False)
        built = index.reindex(store, actor=SYSTEM)
        _sidecar(path).write_text(json.dumps({"seconds": built.seconds, "items": built.items}))
        print(f"# {label}: reindexed {built.items:,} items in {built.seconds:.0f} s", flush=True)


def _cell(value: float | None, base: float | None) -> str:
    if value is None:
        return f"{'-':>19}"
    ratio = f"{value / base:>7.1f}x" if base else ""
    return f"{value:>9.3f} s {ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M,30M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=str(ROOT / "bench" / "out"))
    parser.add_argument("--reindex", action="store_true", help="rebuild and time the index even if timed before")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process: one database, JSON on stdout
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.repeat)))
        return
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = args.sizes.split(",")
    results: dict[str, dict[str, float]] = {}
    for label in labels:
        path = out / f"overview-{label}.duckdb"
        prepare(path, label, args.reindex)
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), "--repeat", str(args.repeat)],
            check=True,
            capture_output=True,
            text=True,
        )
        results[label] = json.loads(child.stdout.strip().splitlines()[-1])
        results[label]["reindex"] = json.loads(_sidecar(path).read_text())["seconds"]
        print(f"# {label}: measured", flush=True)
    head = f"{'':<62}" + "".join(f"{label:>20}" for label in labels)
    growth = len(labels) > 1
    print(head + (f"{labels[-1] + '/' + labels[-2]:>12}" if growth else ""))
    for base in ("bare_30", "bare_all"):
        name = "bare grouped count, " + ("latest 30 days" if base == "bare_30" else "whole history")
        cells = "".join(f"{_cell(results[label][base], None)} " for label in labels)
        tail = f"{results[labels[-1]][base] / results[labels[-2]][base]:>11.2f}x" if growth else ""
        print(f"{name:<62}{cells}{tail}")
    for key, name, base in ROWS:
        values = [results[label].get(key) for label in labels]
        cells = "".join(f"{_cell(v, results[label][base])} " for v, label in zip(values, labels, strict=True))
        last, before = values[-1], values[-2] if growth else None
        tail = f"{last / before:>11.2f}x" if growth and last is not None and before else ""
        print(f"{name:<62}{cells}{tail}")
    peaks = "".join(f"{results[label]['peak_mb']:>16,.0f} MB " for label in labels)
    print(f"{'peak resident memory of the page process':<62}{peaks}")
    print(
        "Times: medians of --repeat runs; beside each, its ratio to the bare grouped count over the same range"
        " (whole history for the player page and the backfill), measured in the same process. Pages run in"
        " Streamlit's AppTest, cold = empty caches. The last column: the largest size over the one before it."
    )


if __name__ == "__main__":
    main()
