"""The player page at 10M failure rows, against the engine's bare grouped count in the same run.

    python bench/player.py [--rows 10M] [--repeat 3]

Seeds (or reuses) the benchmark database of bench/overview.py, then runs the player page in AppTest for a
demo player: cold (empty caches) and warm (cached results), and prints the medians as ratios against the
bare GROUP BY over the latest 30 days of failure rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overview import BARE, app_run_seconds, median_seconds, seed  # noqa: E402
from lib import demo  # noqa: E402
from lib.store import DuckDBStore  # noqa: E402
from lib.store import queries as q  # noqa: E402


def page_seconds(path: Path, player: str, *, warm: bool) -> float:
    return app_run_seconds(path, warm, "views/triage/player.py", {"player": player})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="10M")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = demo.parse_scale(args.rows)
    path = ROOT / "bench" / "out" / f"overview-{args.rows}.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    seed(path, rows)
    store = DuckDBStore(path)
    b = q.bounds(store)
    start, end = b.default_range() or (b.first_date, b.last_date)
    base = median_seconds(lambda: store.query(BARE, {"date_from": start, "date_to": end}), args.repeat)
    player = str(store.query(
        "SELECT entity_id FROM nba_processing.precompute_failures WHERE analysis_date BETWEEN @a AND @b "
        "GROUP BY entity_id ORDER BY COUNT(*) DESC LIMIT 1", {"a": start, "b": end}).iloc[0, 0])  # fmt: skip
    cold = statistics.median(page_seconds(path, player, warm=False) for _ in range(args.repeat))
    warm = statistics.median(page_seconds(path, player, warm=True) for _ in range(args.repeat))
    print(f"failure rows {b.rows:,} · player {player} · latest 30 days {start} to {end}")
    print(f"baseline (bare grouped count, 30 days): {base:.3f} s")
    print(f"player page, cold: {cold:.3f} s ({cold / base:.1f}x baseline) · warm: {warm:.3f} s ({warm / base:.1f}x)")


if __name__ == "__main__":
    main()
