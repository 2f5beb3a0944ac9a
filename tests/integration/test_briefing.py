"""What changed since a comparison point, and the settling metrics, on a crafted history (both engines).

The history is written by hand, event by event, with the times a team would have produced; every expected
figure below is worked out from that timeline in the comments, not from the code under test.

    D0 = Sat 2026-11-07, D1 = Sun 11-08, D2 = Mon 11-09 (a new week), D3 = Tue 11-10; now = D3 13:00,
    so "24 hours ago" = D2 13:00 and the period before that starts at D1 13:00.

    A  row D0 08:00 (DATA_GAP, correctable: verdict written D0 20:00); RESOLVED by alice D1 10:00;
       a run records it again D3 02:00                                   -> REGRESSED now
    B  row D0 09:00 (PLAYER_DNP, set by the pipeline); PERMANENT by alice D2 09:00
    C  row D0 10:00 (COMPLETE, correctable); auto-resolved by system D2 10:00
    D  row D0 11:00 (DATA_GAP written D0 20:00); INVESTIGATING by bob D1 11:00;
       re-classified PLAYER_DNP, uncorrectable, D3 03:00                  -> still open
    E  row D3 05:00, never classified                                     -> new
    F  row D0 12:00 (DATA_GAP); RESOLVED by bob D1 12:00; reopened by alice D2 12:00; RESOLVED by carol D3 06:00
    G  row D0 13:00 (DATA_GAP); RESOLVED by bob D1 13:00; recorded again D2 20:00; RESOLVED by bob D3 08:00
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from lib import briefing, settling
from lib.model import Filters, ItemKey
from lib.store import DuckDBStore, Store
from lib.store import queries as q
from tests import bq
from tests.conftest import precompute_row

ENGINES = ["duckdb", pytest.param("bigquery", marks=pytest.mark.bigquery)]
DAY = dt.date(2021, 12, 31)
PROC = "PlayerDailyCacheProcessor"
D0 = dt.datetime(2026, 11, 7, tzinfo=dt.UTC)


def at(day: int, hour: int) -> dt.datetime:
    return D0 + dt.timedelta(days=day, hours=hour)


NOW = at(3, 13)
TYPES = {  # entity: (failure_type, is_correctable) on its rows now
    "a": ("DATA_GAP", True),
    "b": ("PLAYER_DNP", False),
    "c": ("COMPLETE", True),
    "d": ("PLAYER_DNP", False),
    "e": (None, None),
    "f": ("DATA_GAP", True),
    "g": ("DATA_GAP", True),
}
ROWS = [("a", at(0, 8)), ("a", at(3, 2)), ("b", at(0, 9)), ("c", at(0, 10)), ("d", at(0, 11)), ("e", at(3, 5)),
        ("f", at(0, 12)), ("g", at(0, 13)), ("g", at(2, 20))]  # fmt: skip
EVENTS = [  # entity, from, to, actor, time, origin
    ("a", "UNRESOLVED", "RESOLVED", "alice", at(1, 10), "dashboard"),
    ("b", "UNRESOLVED", "PERMANENT", "alice", at(2, 9), "dashboard"),
    ("c", "UNRESOLVED", "RESOLVED", "system", at(2, 10), "autoresolve"),
    ("d", "UNRESOLVED", "INVESTIGATING", "bob", at(1, 11), "dashboard"),
    ("f", "UNRESOLVED", "RESOLVED", "bob", at(1, 12), "dashboard"),
    ("f", "RESOLVED", "UNRESOLVED", "alice", at(2, 12), "dashboard"),
    ("f", "UNRESOLVED", "RESOLVED", "carol", at(3, 6), "cli"),
    ("g", "UNRESOLVED", "RESOLVED", "bob", at(1, 13), "dashboard"),
    ("g", "REGRESSED", "RESOLVED", "bob", at(3, 8), "dashboard"),
]
VERDICTS = [  # entity, from (type, correctable), to (type, correctable), time
    ("a", (None, None), ("DATA_GAP", True), at(0, 20)),
    ("c", (None, None), ("COMPLETE", True), at(0, 20)),
    ("d", (None, None), ("DATA_GAP", True), at(0, 20)),
    ("d", ("DATA_GAP", True), ("PLAYER_DNP", False), at(3, 3)),
    ("f", (None, None), ("DATA_GAP", True), at(0, 20)),
    ("g", (None, None), ("DATA_GAP", True), at(0, 20)),
]


def _key(entity: str) -> ItemKey:
    return ItemKey("precompute_failures", PROC, DAY, entity)


def write_history(store: Store) -> None:
    rows = [
        precompute_row(entity_id=e, run_id=f"run-{e}-{i}", created_at=pd.Timestamp(t), failure_type=TYPES[e][0],
                       is_correctable=TYPES[e][1])
        for i, (e, t) in enumerate(ROWS)
    ]  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    store.insert_frame("nba_processing.precompute_failures", frame.astype({"is_correctable": "boolean"}))
    events = pd.DataFrame(
        [
            {"event_id": uuid.uuid4().hex, "item_key": _key(e).text, "source_table": "precompute_failures",
             "processor_name": PROC, "item_date": DAY, "entity_id": e, "from_status": fr, "to_status": to,
             "actor": who, "note": "", "at": pd.Timestamp(t), "batch_id": uuid.uuid4().hex, "origin": origin}
            for e, fr, to, who, t, origin in EVENTS
        ]
    )  # fmt: skip
    store.insert_frame("nba_processing.failure_resolutions", events)
    verdicts = pd.DataFrame(
        [
            {"batch_id": uuid.uuid4().hex, "source_table": "precompute_failures", "processor_name": PROC,
             "item_date": DAY, "entity_id": e, "from_type": f[0], "from_correctable": f[1], "to_type": t[0],
             "to_correctable": t[1], "at": pd.Timestamp(when)}
            for e, f, t, when in VERDICTS
        ]
    ).astype({"from_correctable": "boolean", "to_correctable": "boolean"})  # fmt: skip
    store.insert_frame("nba_processing.classification_changes", verdicts)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's emulator checks every catalog read it answers from DuckLake's metadata against DuckDB's own, and
    every translation it uses again against a fresh one (the ``verify`` modes of tests/emulator_entry.py: a
    difference fails the statement). The other modules' emulators use them unchecked; here, after the history is
    written, indexed and read, the log must show catalog reads checked and no difference."""
    log_dir = tmp_path_factory.mktemp("bigquery-emulator")
    yield from bq.start(log_dir, catalog="verify", translations="verify")
    log = (log_dir / "emulator.log").read_text()
    assert "MISMATCH" not in log, log[-2000:]
    checked = [int(n) for n in re.findall(r"catalog reads: (\d+) verified", log)]
    assert checked and max(checked) >= 101, f"too few catalog reads were checked: {checked}"


@pytest.fixture(scope="module", params=ENGINES)
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    if request.param == "duckdb":
        store: Store = DuckDBStore(tmp_path_factory.mktemp("briefing") / "history.duckdb")
    else:
        store = bq.store(request.getfixturevalue("emulator"))
    store.init_schema()
    write_history(store)
    return store


ALL = Filters(hide_expected=False)


def test_what_changed_in_the_last_24_hours_and_the_day_before(history: Store) -> None:
    b = briefing.brief(history, ALL, now=NOW)
    assert b.since == at(2, 13) and b.before == at(1, 13)
    # new: E; regressed: A (RESOLVED at D2 13:00, recorded again D3 02:00); settled: F (carol);
    # reclassified: D (DATA_GAP -> PLAYER_DNP); new correctable work: A (open again, correctable).
    assert b.counts == {"new": 1, "regressed": 1, "settled": 1, "reclassified": 1, "new_correctable": 1}
    # D1 13:00 -> D2 13:00: B and C settled; F reopened (correctable, open again); G's new row came later.
    assert b.previous == {"new": 0, "regressed": 0, "settled": 2, "reclassified": 0, "new_correctable": 1}
    assert b.settled_by.to_dict("records") == [{"who": "carol", "status": "RESOLVED", "items": 1}]
    assert b.reclassified.to_dict("records") == [{"from": "DATA_GAP", "to": "PLAYER_DNP", "items": 1}]


def test_kpis_now_and_at_the_comparison_point(history: Store) -> None:
    b = briefing.brief(history, ALL, now=NOW)
    assert b.kpis_now == q.kpis(history, ALL)  # the present, rebuilt, is what the overview shows
    # now: 7 items; unresolved E; correctable A C F G; uncorrectable B D; unclassified E.
    assert (b.kpis_now.items, b.kpis_now.unresolved, b.kpis_now.correctable, b.kpis_now.uncorrectable,
            b.kpis_now.unclassified) == (7, 1, 4, 2, 1)  # fmt: skip
    # D2 13:00: E not there yet; unresolved F; correctable A C D F G; uncorrectable B; 7 rows minus A's
    # and E's later rows and G's later row = 6 occurrences.
    then = b.kpis_then
    assert (then.items, then.unresolved, then.correctable, then.uncorrectable, then.unclassified,
            then.occurrences) == (6, 1, 5, 1, 0, 6)  # fmt: skip


@pytest.mark.parametrize("kind", ["new", "regressed", "settled", "reclassified", "new_correctable"])
def test_each_count_links_to_exactly_its_items(history: Store, kind: str) -> None:
    expected = {"new": {"e"}, "regressed": {"a"}, "settled": {"f"}, "reclassified": {"d"}, "new_correctable": {"a"}}
    listed = q.list_items(history, ALL.with_(changed=kind, changed_since=at(2, 13)), q.Page(1, 50))
    assert set(listed["entity_id"]) == expected[kind]
    # The same items, counted for the earlier period by the briefing, and listed from D1 13:00 to now.
    b = briefing.brief(history, ALL, now=NOW, since=at(1, 13))
    assert q.count_items(history, ALL.with_(changed=kind, changed_since=at(1, 13))) == b.counts[kind]


def test_settling_metrics(history: Store) -> None:
    s = settling.settling(history, ALL, now=NOW)
    # A 3 d 5 h and D 3 d 2 h open; E 8 h.
    assert dict(zip(s.backlog["age"], s.backlog["items"], strict=True)) == {
        "under 1 day": 1, "1-3 days": 0, "3-7 days": 2, "1-2 weeks": 0, "2-4 weeks": 0, "over 4 weeks": 0}  # fmt: skip
    assert list(s.oldest["entity_id"]) == ["a", "d", "e"]
    weeks = s.by_week.set_index("week")
    first, second = dt.date(2026, 11, 2), dt.date(2026, 11, 9)
    # Week of Nov 2: A 26 h, F 24 h, G 24 h -> median 24, p90 26. Week of Nov 9: B 48, C 48 (auto),
    # F 18 (from its reopening at D2 12:00), G 12 (from its new row at D2 20:00) -> median 18, p90 48.
    assert weeks.loc[first, ["settled", "auto_settled", "median_hours", "p90_hours", "regressions"]].tolist() == [
        3, 0, 24.0, 26.0, 0]  # fmt: skip
    assert weeks.loc[second, ["settled", "auto_settled", "median_hours", "p90_hours", "regressions"]].tolist() == [
        4, 1, 18.0, 48.0, 2]  # fmt: skip
    assert weeks.loc[second, "auto_share"] == pytest.approx(0.25)
    per = s.by_processor.set_index(["week", "failure_type"])
    assert per.loc[(second, "DATA_GAP"), "settled"] == 2 and per.loc[(second, "DATA_GAP"), "median_hours"] == 12.0


def test_nearest_rank_quantiles() -> None:
    values, weights = pd.Series([10.0, 1.0, 3.0, 2.0]), pd.Series([1, 1, 1, 1])
    assert settling.nearest_rank(values, weights, 0.5) == 2.0
    assert settling.nearest_rank(values, weights, 0.9) == 10.0
    assert settling.nearest_rank(pd.Series([5.0, 7.0]), pd.Series([3, 1]), 0.9) == 7.0
    assert settling.nearest_rank(pd.Series([], dtype=float), pd.Series([], dtype=int), 0.5) is None


def _time_to_settle_group_by_group(settled: pd.DataFrame, by: tuple[str, ...]) -> list[tuple[object, ...]]:
    """The definition, one group at a time: settlements, auto ones, and ``nearest_rank`` of the timed ones."""
    frame = settled.assign(week=settled["day"].map(settling.week_of))
    out = []
    for key, g in frame.groupby(["week", *by], sort=True, dropna=False):
        timed = g.dropna(subset=["seconds"])
        ranks = [settling.nearest_rank(timed["seconds"], timed["n"], share) for share in (0.5, 0.9)]
        out.append((*(key if isinstance(key, tuple) else (key,)), int(g["n"].sum()), int(g.loc[g["auto"], "n"].sum()),
                    *(None if r is None else r / 3600 for r in ranks)))  # fmt: skip
    return out


@pytest.mark.parametrize("seed", range(6))
def test_time_to_settle_for_every_group_at_once_equals_the_definition_group_by_group(seed: int) -> None:
    """The Settling page's weekly quantiles are computed for all groups at once (hundreds over a whole history);
    they must equal ``nearest_rank`` applied to each group: ties, untimed settlements, zero weights, one-row groups,
    NULL processors and failure types, and shares that land exactly on a cumulative weight."""
    import random

    rng = random.Random(seed)
    days = [dt.date(2022, 1, 3) + dt.timedelta(days=rng.randint(0, 40)) for _ in range(8)]
    rows = [
        {"day": rng.choice(days), "processor_name": rng.choice(["P1", "P2", None]),
         "failure_type": rng.choice(["DATA_GAP", "PLAYER_DNP", None]), "auto": rng.random() < 0.3,
         "seconds": rng.choice([None, 0, 60, 3600, 3600, 7200, float(rng.randint(1, 10**6))]),
         "n": rng.choice([0, 1, 1, 2, 5, 10])}
        for _ in range(rng.randint(1, 300))
    ]  # fmt: skip
    settled = pd.DataFrame(rows).astype({"seconds": float})
    for by in (("processor_name", "failure_type"), ()):
        got = settling.time_to_settle(settled, by=by)
        mine = [tuple(None if (v is None or (isinstance(v, float) and pd.isna(v))) else v for v in row)
                for row in got.itertuples(index=False)]  # fmt: skip
        want = [tuple(None if (v is None or (isinstance(v, float) and pd.isna(v))) else v for v in row)
                for row in _time_to_settle_group_by_group(settled, by)]  # fmt: skip
        assert mine == want
    assert settling.time_to_settle(settled.iloc[:0]).empty


def test_a_comparison_point_in_the_future_is_refused(history: Store) -> None:
    with pytest.raises(briefing.BadInput, match="not in the past"):
        briefing.brief(history, ALL, now=NOW, since=NOW + dt.timedelta(hours=1))


def test_visits_are_remembered_per_operator(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "visits.duckdb")
    store.init_schema()
    from lib.model import Actor, Role

    assert briefing.last_visit(store, "alice", before=NOW) is None
    briefing.record_visit(store, Actor("alice", Role.VIEWER), at=at(1, 9))
    briefing.record_visit(store, Actor("alice"), at=at(2, 9))
    briefing.record_visit(store, Actor("bob"), at=at(2, 23))
    assert briefing.last_visit(store, "alice", before=NOW) == at(2, 9)
    assert briefing.last_visit(store, "alice", before=at(2, 9)) == at(1, 9)
    with pytest.raises(briefing.NotAllowed):
        briefing.record_visit(store, Actor("system"), at=NOW)
    with pytest.raises(briefing.NotAllowed):
        briefing.record_visit(store, None, at=NOW)
