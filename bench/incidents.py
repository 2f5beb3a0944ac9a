"""The Incidents page at 1M and 10M failure rows, as ratios against the bare grouped count in the same run.

    python bench/incidents.py [--sizes 1M,10M] [--repeat 5] [--dir bench/out]

For each size: seed (or reuse) the benchmark database of bench/overview.py (the classified demo season plus
synthetic rows generated in the engine), bring the item index up to date, and record re-run requests for the
three biggest incidents of the latest 30 days (destination "none": recorded, as on a machine without Pub/Sub),
so that the page follows real requests. Then, for the latest 30 days and the whole history, time:
(a) the bare baseline: one GROUP BY processor, category over the failure table, in the same range;
(b) the incident list (``lib.incidents.incidents``: one statement, then the recovery steps in Python), the items
    of the biggest incident, and the re-run requests with their states (``lib.reruns.follow``);
(c) the page in Streamlit's AppTest, cold (empty caches) and warm (cached results): the list, and the list
    with the biggest incident opened (``?incident=ID``: steps, re-run panel and items).
Medians of --repeat runs (pages: of three). Figures are printed, never asserted: the machines are shared and
noisy. The issue's bound: the latest 30 days at 10M rows, cold <= 1 s, warm <= 0.1 s.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overview import BARE, app_run_seconds, median_seconds, seed, sized_arguments  # noqa: E402
from lib import demo, reruns  # noqa: E402
from lib import incidents as inc  # noqa: E402
from lib.model import Actor, Filters  # noqa: E402
from lib.store import DuckDBStore, index  # noqa: E402
from lib.store import queries as q  # noqa: E402

PAGE = "views/triage/incidents.py"
NOWHERE = reruns.RerunSettings.from_mapping({})


def record_requests(store: DuckDBStore, f: Filters, now: dt.datetime, count: int = 3) -> int:
    """Record re-run requests (destination none) for the ``count`` biggest incidents without one. Messages made."""
    listed = inc.incidents(store, f, now=now)
    asked = set(reruns.requests(reruns.follow(store, f, NOWHERE, now=now))["incident_id"].dropna())
    made = 0
    for incident_id in [i for i in listed["incident_id"] if i not in asked][: max(0, count - len(asked))]:
        plan = reruns.plan_incident(store, f, incident_id, NOWHERE, now=now)
        if plan.messages and len(plan.dates) <= NOWHERE.max_dates:
            sent = reruns.send(store, plan, Actor("bench"), note="benchmark request", settings=NOWHERE, now=now)
            made += len(sent.outcomes)
    return made


def page_seconds(path: Path, f: Filters, *, warm: bool, incident: str = "") -> float:
    params = {"from": f.date_from.isoformat(), "to": f.date_to.isoformat()} if f.date_from and f.date_to else {}
    if incident:
        params["incident"] = incident
    return app_run_seconds(path, warm, PAGE, params)


def main() -> None:
    args, out = sized_arguments(__doc__)
    lines, notes = [], []
    for label in args.sizes.split(","):
        rows = demo.parse_scale(label)
        path = out / f"overview-{label}.duckdb"
        seeded = seed(path, rows)
        if seeded:
            print(f"# seeded {rows:,} rows in {seeded:.1f} s", flush=True)
        store = DuckDBStore(path)
        store.init_schema(pipeline_tables=False)
        b = q.bounds(store)
        index.ensure(store, b.first_date, b.last_date)
        now = dt.datetime.combine(b.last_date + dt.timedelta(days=1), dt.time(9), tzinfo=dt.UTC)
        start, end = b.default_range() or (b.first_date, b.last_date)
        views = {
            "latest 30 d": Filters(date_from=start, date_to=end),
            "all history": Filters(date_from=b.first_date, date_to=b.last_date),
        }
        made = record_requests(store, views["latest 30 d"], now)
        if made:
            print(f"# recorded {made} re-run messages for the biggest incidents of the latest 30 days", flush=True)
        for view, f in views.items():
            params = {"date_from": f.date_from, "date_to": f.date_to}
            base = median_seconds(lambda: store.query(BARE, params), args.repeat)  # noqa: B023
            listed = inc.incidents(store, f, now=now)
            top = inc.IncidentId.parse(str(listed["incident_id"].iloc[0]))
            t_list = median_seconds(lambda: inc.incidents(store, f, now=now), args.repeat)  # noqa: B023
            t_items = median_seconds(lambda: inc.incident_items(store, f, top), args.repeat)  # noqa: B023
            t_follow = median_seconds(lambda: reruns.follow(store, f, NOWHERE, now=now), args.repeat)  # noqa: B023
            cold = statistics.median(page_seconds(path, f, warm=False) for _ in range(3))
            warm = statistics.median(page_seconds(path, f, warm=True) for _ in range(3))
            d_cold = statistics.median(page_seconds(path, f, warm=False, incident=top.text) for _ in range(3))
            d_warm = statistics.median(page_seconds(path, f, warm=True, incident=top.text) for _ in range(3))
            figures = (t_list, t_items, t_follow, cold, warm, d_cold, d_warm)
            cells = " ".join(f"{t:>8.3f}s {t / base:>6.1f}" for t in figures)
            lines.append(f"{label:>6} {view:<13} {len(listed):>9,} {base:>8.3f}s {cells}")
            print(lines[-1], flush=True)
            head = listed.iloc[0]
            notes.append(f"{label:>6} {view:<13} biggest: {head['root_cause']} "
                         f"({int(head['open_items']):,} open of {int(head['items']):,} items)")  # fmt: skip
    print()
    heads = ["rows", "view", "incidents", "baseline", "list", "ratio", "items", "ratio", "requests", "ratio",
             "page cold", "ratio", "page warm", "ratio", "open cold", "ratio", "open warm", "ratio"]  # fmt: skip
    widths = [6, -13, 9, 9, 9, 6, 9, 6, 9, 6, 9, 6, 9, 6, 9, 6, 9, 6]
    print(" ".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)))
    for line in lines:
        print(line)
    print(
        "ratios: time / baseline (bare GROUP BY over the same rows, same run). list: lib.incidents.incidents; items:"
        " the biggest incident's items; requests: the re-run requests and their states; page: the Incidents page in"
        " AppTest (open: with the biggest incident opened), cold = empty caches, warm = cached."
    )
    for line in notes:
        print(line)


if __name__ == "__main__":
    main()
