"""Classification speed at scale, against a per-game-query approach measured in the same run.

    python bench/classify.py [--rows 1M] [--sample 200] [--dir bench/out]

Seeds the demo season plus synthetic failure rows up to --rows, then:
(a) set-based: ``lib.classification.run`` over every item (a few queries per batch of 20,000 items);
(b) per-game queries: for --sample items, one query for the player's appearances, one for his team's
    schedule, then three per expected game (raw rows of the side, analytics rows of the side,
    unresolved names of the side), judged by the same pure classifier; its time per item is
    extrapolated to all items. Prints both and their ratio, plus the accuracy on the full 2019-20
    box scores when ../shared/data/nba-2019-20 is present.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib import classification, demo  # noqa: E402
from lib.classifier import ClassifierConfig, Evidence, classify, entity_kind  # noqa: E402
from lib.model import Appearance, FailureToClassify, Filters, ScheduledGame  # noqa: E402
from lib.store import DuckDBStore  # noqa: E402
from lib.store import queries as q  # noqa: E402

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


def seed(path: Path, rows: int) -> None:
    if path.exists() and q.bounds(DuckDBStore(path)).rows == rows:
        return
    for p in (path, Path(f"{path}.wal")):
        p.unlink(missing_ok=True)
    store = DuckDBStore(path)
    season = demo.seed(store)
    demo.add_scale_rows(store, rows - season.failure_rows, players=sorted({p.lookup for p in season.players}))


def per_game_queries(store: DuckDBStore, failure: FailureToClassify, config: ClassifierConfig) -> None:
    """The approach the set-based pass replaces: ask the engine about each game on its own."""
    day = failure.item_date
    start = day - dt.timedelta(days=config.lookback(failure.processor_name))
    apps: list[Appearance] = []
    if entity_kind(failure) == "PLAYER":
        rows = store.query(
            "SELECT game_date, team_abbr, player_status, dnp_reason, minutes FROM nba_raw.nbac_gamebook_player_stats "
            "WHERE player_lookup = @p AND game_date BETWEEN @a AND @b",
            {"p": failure.entity_id, "a": start - dt.timedelta(days=400), "b": day},
        )
        apps = [Appearance(r.game_date, r.team_abbr, "raw", r.player_status, r.dnp_reason, r.minutes)
                for r in rows.itertuples(index=False)]  # fmt: skip
    teams = sorted({a.team for a in apps}) or [failure.entity_id]
    games = store.query(
        "SELECT game_id, game_date, game_status, home_team_tricode, away_team_tricode FROM nba_raw.nbac_schedule "
        "WHERE game_date BETWEEN @a AND @b AND (home_team_tricode IN UNNEST(@t) OR away_team_tricode IN UNNEST(@t))",
        {"a": start, "b": day, "t": teams},
    )
    scheduled = [ScheduledGame(r.game_id, r.game_date, r.home_team_tricode, r.away_team_tricode, int(r.game_status))
                 for r in games.itertuples(index=False)]  # fmt: skip
    raw: dict[tuple[dt.date, str], int] = {}
    ana: dict[tuple[dt.date, str], int] = {}
    unresolved: dict[tuple[dt.date, str], list[str]] = defaultdict(list)
    for g in scheduled:
        for team in g.teams():
            if team not in teams:
                continue
            side = {"d": g.game_date, "t": team}
            raw[(g.game_date, team)] = int(store.query(
                "SELECT COUNT(*) AS n FROM nba_raw.nbac_gamebook_player_stats WHERE game_date = @d AND team_abbr = @t",
                side).iloc[0]["n"])  # fmt: skip
            ana[(g.game_date, team)] = int(store.query(
                "SELECT COUNT(*) AS n FROM nba_analytics.player_game_summary WHERE game_date = @d AND team_abbr = @t",
                side).iloc[0]["n"])  # fmt: skip
            unresolved[(g.game_date, team)] = list(store.query(
                "SELECT player_lookup FROM nba_raw.nbac_gamebook_player_stats WHERE game_date = @d AND team_abbr = @t "
                "AND name_resolution_status <> 'resolved'", side)["player_lookup"])  # fmt: skip
    classify(failure, Evidence(scheduled, raw, ana, unresolved, {failure.entity_id: apps}), config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1M")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--dir", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()
    rows = demo.parse_scale(args.rows)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"classify-{args.rows}.duckdb"
    seed(path, rows)
    work = out / f"classify-{args.rows}-work.duckdb"
    work.write_bytes(path.read_bytes())
    store = DuckDBStore(work)
    items = q.count_items(store, Filters(hide_expected=False))
    config = ClassifierConfig()

    sample_frame = next(q.iter_items(store, Filters(date_from=dt.date(2022, 1, 1), hide_expected=False),
                                     chunk=args.sample))  # fmt: skip
    sample = [classification.failure_from_item(r) for r in classification._records(sample_frame)]
    started = time.perf_counter()
    for failure in sample:
        per_game_queries(store, failure, config)
    per_item = (time.perf_counter() - started) / len(sample)

    started = time.perf_counter()
    report = classification.run(store, now=NOW, include_classified=True)
    set_based = time.perf_counter() - started

    print(f"failure rows {rows:,} · items {items:,}")
    print(f"set-based:  {set_based:8.1f} s for {report.items:,} items ({report.items / set_based:,.0f} items/s, "
          f"{report.batches} batches)")  # fmt: skip
    print(f"per-game:   {per_item * 1000:8.1f} ms per item on a sample of {len(sample)} "
          f"-> {per_item * items:,.0f} s extrapolated to all items")  # fmt: skip
    print(f"ratio:      per-game / set-based = {per_item * items / set_based:,.0f}x")
    for line in report.lines():
        print("  " + line)

    shared = ROOT.parent / "shared" / "data" / "nba-2019-20"
    if shared.exists():
        sys.path.insert(0, str(ROOT))
        from tests import realdata

        world = realdata.build(shared, gaps=30)
        real = DuckDBStore(out / "real-2019-20.duckdb")
        for p in (real.path, Path(f"{real.path}.wal")):
            p.unlink(missing_ok=True)
        realdata.write(real, world)
        classification.run(real, now=NOW, config=realdata.classifier_config())
        acc = realdata.measure(real, world)
        print(acc.report(f"real 2019-20 box scores (all teams, {world.injected})"))


if __name__ == "__main__":
    main()
