"""Overview speed at 1M and 10M failure rows with the item index, as ratios against the bare grouped count.

    python bench/overview.py [--sizes 1M,10M] [--repeat 5] [--dir bench/out]

For each size: seed the demo season plus synthetic rows (generated in the engine), build the item index, then
time, for the default view (latest 30 days) and for the whole history:
(a) the bare baseline: one GROUP BY processor, category over the failure table, in the same range;
(b) the overview's engine work: from the daily rollups (the index fresh and known fresh), after a data change
    (the fingerprint pass over the range, then the rollups), and the same reads with the index bypassed (items
    computed from the failure rows: what every page load cost before the index);
(c) a full page run in Streamlit's AppTest, cold (empty caches) and warm (cached results);
(d) the what-changed panel's query and the Settling page's reads.
Then the index's upkeep: a full reindex, the refresh after a 10k-row processor run (one date), and after a bulk
resolution of 100k items; and the bytes one overview would have BigQuery scan, before and after, from the
columns' sizes (the emulator reports no bytes for a query or a dry run). Medians of --repeat runs. Figures
are printed, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from lib import briefing, demo, resolution, settling  # noqa: E402
from lib.access import SYSTEM  # noqa: E402
from lib.model import Actor, Filters, ResolutionStatus  # noqa: E402
from lib.store import DuckDBStore, index  # noqa: E402
from lib.store import queries as q  # noqa: E402

BARE = """
SELECT processor_name, failure_category, COUNT(*) AS n
FROM nba_processing.precompute_failures
WHERE analysis_date BETWEEN @date_from AND @date_to
GROUP BY processor_name, failure_category"""


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm the file cache and the statement cache once
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def overview_reads(store: DuckDBStore, f: Filters) -> None:
    """What the overview asks the engine: one query for the cube; KPIs, matrix and trend are cut from it."""
    cube = q.summary(store, f)
    q.kpis_of(cube, f.hide_expected)
    q.matrix_of(cube, f.hide_expected)
    q.trend_of(cube, f.hide_expected)


def measure_queries(store: DuckDBStore, f: Filters, repeat: int) -> dict[str, float]:
    """Median seconds of the bare count, and of the overview's reads: from the index known fresh, after a data
    change (fingerprints first), and with the index bypassed."""
    params = {"date_from": f.date_from, "date_to": f.date_to}

    def checked() -> None:
        index.forget(store)
        overview_reads(store, f)

    def bypassed() -> None:
        with index.bypassed(store):
            overview_reads(store, f)

    return {
        "base": median_seconds(lambda: store.query(BARE, params), repeat),
        "index": median_seconds(lambda: overview_reads(store, f), repeat),
        "checked": median_seconds(checked, repeat),
        "bypassed": median_seconds(bypassed, max(1, repeat // 2)),
    }


def measure_briefing(store: DuckDBStore, f: Filters, repeat: int) -> tuple[float, float]:
    """(what changed, settling) median seconds: the overview's panel (items rebuilt at three instants from the
    history) and the Settling page's four reads."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    return (
        median_seconds(lambda: briefing.brief(store, f, now=now), repeat),
        median_seconds(lambda: settling.settling(store, f, now=now), repeat),
    )


def seed(path: Path, rows: int) -> float:
    if path.exists() and q.bounds(DuckDBStore(path)).rows == rows:
        return 0.0
    for p in (path, Path(f"{path}.wal")):
        p.unlink(missing_ok=True)
    store = DuckDBStore(path)
    started = time.perf_counter()
    season = demo.seed(store, actor=SYSTEM)
    extra = rows - season.failure_rows
    demo.add_scale_rows(store, extra, players=sorted({p.lookup for p in season.players}), actor=SYSTEM)
    return time.perf_counter() - started


def _compile_once() -> None:
    """Let AppTest keep the scripts' compiled code between runs, as the server does (one script cache per process;
    AppTest makes a new one for every run, which would time compiling the page with every page load)."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache

    if not isinstance(app_test.ScriptCache, type):
        return
    shared = ScriptCache()
    app_test.ScriptCache = lambda: shared  # type: ignore[assignment,misc]
    # Every new AppTest also scans each installed package for component manifests (about 0.1 s); the server scans
    # once when it starts, so the answer is kept, as tests/conftest.py keeps it.
    from streamlit.components.v2 import manifest_scanner

    scan = manifest_scanner.scan_component_manifests
    if not hasattr(scan, "cache_info"):
        manifest_scanner.scan_component_manifests = functools.lru_cache(maxsize=4)(scan)  # type: ignore[assignment]


def app_run_seconds(path: Path, warm: bool, page: str = "", params: dict[str, str] | None = None) -> float:
    """One run of the app (``page``, with these URL ``params``) in AppTest: cold caches, or warm. The scripts are
    compiled once per process, as the server compiles them (``_compile_once``)."""
    from streamlit.testing.v1 import AppTest

    _compile_once()
    os.environ["TRIAGE_DB"] = str(path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    if page:
        at.switch_page(page)
    at.query_params.update(params or {})
    if warm:
        at.run()
    else:
        from ui import data

        data.refresh()  # the cached results and the charts kept as built
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return elapsed


def refresh_after_run(store: DuckDBStore, day: dt.date, rows: int) -> float:
    """A processor's run of ``rows`` rows on ``day`` (written as the pipeline writes them), then the refresh that
    ``lib.processors.record_failures`` makes after it: the run's date range. Returns its seconds."""
    players = [f"benchplayer{i}" for i in range(rows)]
    frame = pd.DataFrame({
        "processor_name": "PlayerDailyCacheProcessor", "run_id": f"bench-run-{time.time_ns()}", "analysis_date": day,
        "entity_id": players, "failure_category": "INCOMPLETE_DATA", "failure_reason": "bench", "can_retry": True,
        "resolution_status": "UNRESOLVED", "created_at": pd.Timestamp.now(tz="UTC"),
    })  # fmt: skip
    store.insert_frame("nba_processing.precompute_failures", frame)
    started = time.perf_counter()
    done = index.after_write(store, day, day)
    elapsed = time.perf_counter() - started
    assert done.refreshed_dates == 1, done
    return elapsed


def refresh_after_bulk_resolution(store: DuckDBStore, end: dt.date, items: int) -> tuple[int, float, float]:
    """Resolve about ``items`` open items at once (the latest dates), then refresh. (items, resolve s, refresh s)."""
    start = end
    while q.count_items(store, Filters(date_from=start, date_to=end, hide_expected=False)) < items:
        start -= dt.timedelta(days=3)
    scope = resolution.Scope(Filters(date_from=start, date_to=end, hide_expected=False))
    with index.bypassed(store):  # the write alone; its refresh is timed below
        started = time.perf_counter()
        change = resolution.apply(store, scope, ResolutionStatus.RESOLVED, actor=Actor("bench"), note="bench")
        resolve = time.perf_counter() - started
    started = time.perf_counter()
    index.ensure(store, start, end)
    return change.changed, resolve, time.perf_counter() - started


_BQ_FIXED = {"BIGINT": 8, "INTEGER": 8, "DOUBLE": 8, "DATE": 8, "TIMESTAMP WITH TIME ZONE": 8, "BOOLEAN": 1}


def bigquery_bytes(store: DuckDBStore, table: str, columns: list[str], date: str, f: Filters) -> int:
    """What BigQuery bills for reading these columns of a table over the date range: 2 bytes plus the UTF-8 text
    of a STRING, 8 for an INT64, DATE or TIMESTAMP, 1 for a BOOL (its documented sizes)."""
    with store.connect() as con:
        types = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $t", {"t": table}
        ).df()
    kinds = dict(zip(types["column_name"], types["data_type"], strict=True))

    def size(c: str) -> str:
        quoted = f'"{c}"'  # "at" is a keyword in DuckDB
        if kinds[c] in _BQ_FIXED:
            return f"{_BQ_FIXED[kinds[c]]} * COUNT({quoted})"
        return f"SUM(2 + OCTET_LENGTH(CAST({quoted} AS BLOB)))"

    parts = [size(c) for c in columns]
    sql = f"SELECT {' + '.join(parts)} AS b FROM nba_processing.{table} WHERE {date} BETWEEN $a AND $b"
    with store.connect() as con:
        value = con.execute(sql, {"a": f.date_from, "b": f.date_to}).fetchone()
    return int(value[0] or 0) if value else 0


def overview_bytes(store: DuckDBStore, f: Filters) -> dict[str, int]:
    """Bytes one overview load reads on BigQuery: before the index (items computed from the rows), after it with
    the data unchanged (the rollups), and after a data change (the fingerprint pass, then the rollups)."""
    rows = ["processor_name", "analysis_date", "entity_id", "run_id", "failure_category", "failure_type",
            "is_correctable", "resolution_status", "created_at"]  # fmt: skip
    events = ["source_table", "processor_name", "item_date", "entity_id", "to_status", "at", "event_id"]
    before = bigquery_bytes(store, "precompute_failures", rows, "analysis_date", f) + bigquery_bytes(
        store, "failure_resolutions", events, "item_date", f
    )
    rollups = bigquery_bytes(
        store, "failure_rollups", ["item_date", "source_table", "processor_name", "failure_category", "phase",
                                   "failure_type", "correctable_class", "status", "is_expected", "items",
                                   "occurrences"], "item_date", f,
    )  # fmt: skip
    prints = bigquery_bytes(store, "precompute_failures", [*rows, "resolved_at"], "analysis_date", f)
    prints += bigquery_bytes(store, "failure_resolutions", ["source_table", "item_date", "event_id"], "item_date", f)
    prints += bigquery_bytes(store, "failure_index_dates", ["source_table", "item_date", "fingerprint"], "item_date", f)
    return {"before": before, "unchanged": rollups, "changed": prints + rollups}


def sized_arguments(doc: str | None) -> tuple[argparse.Namespace, Path]:
    """The benchmarks' common options (--sizes, --repeat, --dir), and the folder of their databases."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    return args, out


def main() -> None:
    args, out = sized_arguments(__doc__)
    upkeep, bytes_rows = [], []
    heads = [
        ("rows", 6),
        ("view", -13),
        ("baseline", 9),
        ("index", 8),
        ("ratio", 6),
        ("+check", 8),
        ("ratio", 6),
        ("no index", 9),
        ("ratio", 6),
        ("page cold", 10),
        ("page warm", 10),
        ("changed", 9),
        ("settling", 9),
    ]
    print(" ".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w in heads))
    for label in args.sizes.split(","):
        rows = demo.parse_scale(label)
        path = out / f"overview-{label}.duckdb"
        seeded = seed(path, rows)
        if seeded:
            size_mb = path.stat().st_size / 1e6
            print(f"# seeded {rows:,} rows in {seeded:.1f} s ({rows / seeded:,.0f} rows/s), {size_mb:.0f} MB")
        store = DuckDBStore(path)
        store.init_schema(pipeline_tables=False)
        built = index.reindex(store, actor=SYSTEM)
        b = q.bounds(store)
        start, end = b.default_range() or (b.first_date, b.last_date)
        views = {
            "latest 30 d": Filters(date_from=start, date_to=end),
            "all history": Filters(date_from=b.first_date, date_to=b.last_date),
        }
        for view, f in views.items():
            t = measure_queries(store, f, args.repeat)
            base = t["base"]
            url = {"from": f.date_from.isoformat(), "to": f.date_to.isoformat()} if f.date_from and f.date_to else {}
            cold = statistics.median(app_run_seconds(path, warm=False, params=url) for _ in range(3))
            warm = statistics.median(app_run_seconds(path, warm=True, params=url) for _ in range(3))
            changed, settled = measure_briefing(store, f, args.repeat)
            ratios = " ".join(f"{t[k]:>8.3f}s {t[k] / base:>6.1f}" for k in ("index", "checked", "bypassed"))
            pages = f"{cold:>9.3f}s {warm:>9.3f}s {changed:>8.3f}s {settled:>8.3f}s"
            print(f"{label:>6} {view:<13} {base:>8.3f}s {ratios} {pages}")
            mb = {k: v / 1e6 for k, v in overview_bytes(store, f).items()}
            bytes_rows.append(
                f"{label:>6} {view:<13} {mb['before']:>10.1f} MB {mb['unchanged']:>12.2f} MB {mb['changed']:>12.1f} MB"
            )
        run = refresh_after_run(store, end, 10_000)
        items, resolve, refresh = refresh_after_bulk_resolution(store, end, 100_000)
        full = f"{built.seconds:>9.1f}s ({built.refreshed_dates:,} dates, {built.items:,} items)"
        bulk = f"{items:>9,} items: resolved in {resolve:.2f} s, refreshed in {refresh:.2f} s"
        upkeep.append(f"{label:>6} {full} {run:>9.3f}s {bulk}")
    print(
        "ratios: time / baseline (bare GROUP BY over the same rows, same run). Page runs use AppTest (default"
        " page: the overview, with the view's dates in the URL)."
    )
    print(
        "index: from the rollups, known fresh; +check: after a data change (fingerprint pass first); no index:"
        " items computed from the failure rows."
    )
    print("changed: the overview's what-changed panel (three instants); settling: the Settling page's reads.")
    print()
    print(f"{'rows':>6} {'full reindex':>13} {'':<32} {'10k-row run':>11} {'bulk resolution'}")
    for line in upkeep:
        print(line)
    print()
    print("BigQuery bytes for one overview (column sizes of what it reads):")
    print(f"{'rows':>6} {'view':<13} {'before':>13} {'after, same data':>15} {'after a change':>15}")
    for line in bytes_rows:
        print(line)


if __name__ == "__main__":
    main()
