"""Classification speed at scale: the engine-side classifier, the Python oracle, and per-game queries.

    python bench/classify.py [--rows 1M] [--sample 200] [--dir bench/out]

Seeds the demo season plus synthetic failure rows up to --rows, then, in one run and each in a process of
its own (so that each peak memory is its own):
(a) engine: ``classification.run`` computing every verdict in the engine (lib/engine_verdicts.py);
(b) oracle: the same items judged by the pure Python classifier after loading their evidence;
(c) per-game queries: for --sample items, one query for the player's appearances, one for his team's
    schedule, then three per expected game, judged by the pure classifier; extrapolated to all items.
Prints times as ratios against the engine, peak memory, the rows the client received, and the accuracy on
the full 2019-20 box scores when ../shared/data/nba-2019-20 is present.
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
from lib.access import SYSTEM  # noqa: E402
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
    season = demo.seed(store, actor=SYSTEM)
    demo.add_scale_rows(
        store, rows - season.failure_rows, players=sorted({p.lookup for p in season.players}), actor=SYSTEM
    )


def per_game_queries(store: DuckDBStore, failure: FailureToClassify, config: ClassifierConfig) -> None:
    """The approach the set-based pass replaces: ask the engine about each game on its own."""
    day = failure.item_date
    start = day - dt.timedelta(days=max(w.reach_days for w in config.windows(failure.processor_name)))
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


class _Received:
    """Counts the rows every query hands back to this process (what the client receives)."""

    rows = 0

    @classmethod
    def install(cls) -> None:
        from lib.store import duckdb_store

        for owner in (duckdb_store.DuckDBStore, duckdb_store._DuckTransaction):
            original = owner.query

            def counted(self, sql, params=None, *a, _original=original, **kw):  # type: ignore[no-untyped-def]
                frame = _original(self, sql, params, *a, **kw)
                cls.rows += len(frame)
                return frame

            owner.query = counted  # type: ignore[method-assign]


def one(method: str, path: Path) -> None:
    """Classify every item of ``path`` with one method; print one JSON line."""
    import json
    import resource

    _Received.install()
    store = DuckDBStore(path)
    started = time.perf_counter()
    report = classification.run(store, actor=SYSTEM, now=NOW, include_classified=True, method=method)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": method, "seconds": seconds, "items": report.items, "batches": report.batches,
                      "peak_mb": peak, "rows_received": _Received.rows, "by_type": dict(report.by_type)}))  # fmt: skip


def _child(method: str, source: Path, out: Path) -> dict[str, object]:
    import json
    import subprocess

    work = out / f"{source.stem}-{method}.duckdb"
    work.write_bytes(source.read_bytes())
    done = subprocess.run([sys.executable, __file__, "--one", method, "--db", str(work)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    work.unlink(missing_ok=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1M")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--dir", default=str(ROOT / "bench" / "out"))
    parser.add_argument("--skip-oracle", action="store_true", help="only the engine (e.g. at 10M rows)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, Path(args.db))
        return
    rows = demo.parse_scale(args.rows)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"classify-{args.rows}.duckdb"
    seed(path, rows)
    store = DuckDBStore(path)
    items = q.count_items(store, Filters(hide_expected=False))
    config = ClassifierConfig()

    engine = _child("engine", path, out)
    oracle = None if args.skip_oracle else _child("oracle", path, out)

    sample_frame = next(q.iter_items(store, Filters(date_from=dt.date(2022, 1, 1), hide_expected=False),
                                     chunk=args.sample))  # fmt: skip
    sample = [classification.failure_from_item(r) for r in classification._records(sample_frame)]
    started = time.perf_counter()
    for failure in sample:
        per_game_queries(store, failure, config)
    per_item = (time.perf_counter() - started) / len(sample)

    base = float(engine["seconds"])  # type: ignore[arg-type]
    print(f"failure rows {rows:,} · items {items:,}")
    print(f"engine:     {base:8.1f} s for {engine['items']:,} items ({int(engine['items']) / base:,.0f} items/s, "  # type: ignore[call-overload]
          f"{engine['batches']} batches) · peak {float(engine['peak_mb']):,.0f} MB · "  # type: ignore[arg-type]
          f"{engine['rows_received']:,} rows received by the client")  # fmt: skip
    if oracle is not None:
        o = float(oracle["seconds"])  # type: ignore[arg-type]
        print(f"oracle:     {o:8.1f} s ({o / base:,.1f}x the engine) · peak {float(oracle['peak_mb']):,.0f} MB · "  # type: ignore[arg-type]
              f"{oracle['rows_received']:,} rows received")  # fmt: skip
        print(f"same verdicts by failure type: {engine['by_type'] == oracle['by_type']}")
    print(f"per-game:   {per_item * 1000:8.1f} ms per item on a sample of {len(sample)} "
          f"-> {per_item * items:,.0f} s extrapolated ({per_item * items / base:,.0f}x the engine)")  # fmt: skip
    print(f"by failure_type: {engine['by_type']}")

    shared = ROOT.parent / "shared" / "data" / "nba-2019-20"
    if shared.exists():
        from tests import realdata

        world = realdata.build(shared, gaps=30)
        real = DuckDBStore(out / "real-2019-20.duckdb")
        for p in (real.path, Path(f"{real.path}.wal")):
            p.unlink(missing_ok=True)
        realdata.write(real, world)
        classification.run(real, actor=SYSTEM, now=NOW, config=realdata.classifier_config())
        acc = realdata.measure(real, world)
        print(acc.report(f"real 2019-20 box scores (all teams, {world.injected})"))


if __name__ == "__main__":
    main()
