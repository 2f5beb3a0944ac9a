"""Overview speed at 1M and 10M failure rows, as ratios against the engine's bare grouped count.

    python bench/overview.py [--sizes 1M,10M] [--repeat 5] [--dir bench/out]

For each size: seed the demo season plus synthetic rows (generated in the engine), then time
(a) the bare baseline: one GROUP BY processor, category over the failure table, in the same range;
(b) the overview's queries (KPIs, processor x category, trend): what the page asks the engine;
(c) a full page run in Streamlit's AppTest, cold (empty caches) and warm (cached results);
(d) the what-changed panel's query and the Settling page's reads.
Both for the default view (latest 30 days) and for the whole history. Medians of --repeat runs.
Figures are printed, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib import briefing, demo, settling  # noqa: E402
from lib.access import SYSTEM  # noqa: E402
from lib.model import Filters  # noqa: E402
from lib.store import DuckDBStore  # noqa: E402
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


def measure_queries(store: DuckDBStore, f: Filters, repeat: int) -> tuple[float, float]:
    """(baseline, overview) median seconds: the bare count, and what the overview asks the engine."""
    params = {"date_from": f.date_from, "date_to": f.date_to}

    def overview() -> None:
        cube = q.summary(store, f)  # one query; the page cuts KPIs, matrix and trend from it
        q.kpis_of(cube, f.hide_expected)
        q.matrix_of(cube, f.hide_expected)
        q.trend_of(cube, f.hide_expected)

    return median_seconds(lambda: store.query(BARE, params), repeat), median_seconds(overview, repeat)


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


def app_run_seconds(path: Path, warm: bool, page: str = "", params: dict[str, str] | None = None) -> float:
    """One run of the app (``page``, with these URL ``params``) in AppTest: cold caches, or warm."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["TRIAGE_DB"] = str(path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    if page:
        at.switch_page(page)
    at.query_params.update(params or {})
    if warm:
        at.run()
    else:
        st.cache_data.clear()
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)

    print(f"{'rows':>6} {'view':<13} {'baseline':>9} {'overview':>9} {'ratio':>6} {'page cold':>10} {'ratio':>6} "
          f"{'page warm':>10} {'ratio':>6} {'changed':>9} {'ratio':>6} {'settling':>9} {'ratio':>6}")  # fmt: skip
    for label in args.sizes.split(","):
        rows = demo.parse_scale(label)
        path = out / f"overview-{label}.duckdb"
        seeded = seed(path, rows)
        if seeded:
            size_mb = path.stat().st_size / 1e6
            print(f"# seeded {rows:,} rows in {seeded:.1f} s ({rows / seeded:,.0f} rows/s), {size_mb:.0f} MB")
        store = DuckDBStore(path)
        b = q.bounds(store)
        start, end = b.default_range() or (b.first_date, b.last_date)
        views = {
            "latest 30 d": Filters(date_from=start, date_to=end),
            "all history": Filters(date_from=b.first_date, date_to=b.last_date),
        }
        for view, f in views.items():
            base, page_time = measure_queries(store, f, args.repeat)
            if view == "latest 30 d":
                cold = statistics.median(app_run_seconds(path, warm=False) for _ in range(3))
                warm = statistics.median(app_run_seconds(path, warm=True) for _ in range(3))
                app = f"{cold:>9.3f}s {cold / base:>6.1f} {warm:>9.3f}s {warm / base:>6.1f}"
            else:
                app = f"{'-':>10} {'-':>6} {'-':>10} {'-':>6}"
            changed, settled = measure_briefing(store, f, args.repeat)
            brief = f"{changed:>8.3f}s {changed / base:>6.1f} {settled:>8.3f}s {settled / base:>6.1f}"
            print(f"{label:>6} {view:<13} {base:>8.3f}s {page_time:>8.3f}s {page_time / base:>6.1f} {app} {brief}")
    print("ratios: time / baseline (bare GROUP BY over the same rows, same run). Page runs use AppTest.")
    print("changed: the overview's what-changed panel (three instants); settling: the Settling page's reads.")


if __name__ == "__main__":
    main()
