"""The pure classifier against every trap in the domain brief, one small world per case."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from lib.classifier import ClassifierConfig, Evidence, classify, entity_kind, minutes_positive, team_on
from lib.model import Appearance, FailureToClassify, FailureType, ScheduledGame, Window

D = dt.date(2022, 1, 15)  # analysis date; the default window is Jan 1 .. Jan 14


def day(n: int) -> dt.date:
    return dt.date(2022, 1, n)


@dataclass
class World:
    """Games every other day (Jan 2, 4, .., 14) between LAL and BOS, and BKN v MIA on the same days."""

    games: list[ScheduledGame] = field(default_factory=list)
    raw: list[tuple[dt.date, str, str, str, str | None, str | None, bool]] = field(default_factory=list)
    analytics: list[tuple[dt.date, str, str, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, n in enumerate(range(2, 15, 2)):
            self.games.append(ScheduledGame(f"00221{i:05d}", day(n), "LAL", "BOS", 3))
            self.games.append(ScheduledGame(f"00221{i + 50:05d}", day(n), "MIA", "BKN", 3))

    def dates(self) -> list[dt.date]:
        return sorted({g.game_date for g in self.games if g.home == "LAL"})

    def box(self, d: dt.date, team: str, player: str, status: str = "active", minutes: str | None = "30:00",
            reason: str | None = None, resolved: bool = True) -> None:  # fmt: skip
        self.raw.append((d, team, player, status, minutes, reason, resolved))

    def played(self, d: dt.date, team: str, player: str, is_dnp: bool = False) -> None:
        self.analytics.append((d, team, player, is_dnp))

    def full_game(self, d: dt.date, team: str, player: str) -> None:
        """A normal game: teammates in the box score and analytics, and the player too."""
        self.teammates(d, team)
        self.box(d, team, player)
        self.played(d, team, player)

    def teammates(self, d: dt.date, team: str) -> None:
        for mate in ("mate1", "mate2"):
            self.box(d, team, f"{team.lower()}{mate}")
            self.played(d, team, f"{team.lower()}{mate}")

    def evidence(self) -> Evidence:
        raw_rows: dict[tuple[dt.date, str], int] = defaultdict(int)
        ana_rows: dict[tuple[dt.date, str], int] = defaultdict(int)
        unresolved: dict[tuple[dt.date, str], list[str]] = defaultdict(list)
        apps: dict[str, list[Appearance]] = defaultdict(list)
        for d, team, player, status, minutes, reason, resolved in self.raw:
            raw_rows[(d, team)] += 1
            if not resolved:
                unresolved[(d, team)].append(player)
            apps[player].append(Appearance(d, team, "raw", status, reason, minutes, resolved=resolved))
        for d, team, player, is_dnp in self.analytics:
            ana_rows[(d, team)] += 1
            apps[player].append(Appearance(d, team, "analytics", is_dnp=is_dnp))
        return Evidence(self.games, raw_rows, ana_rows, unresolved, apps)


def failure(entity: str = "zach", category: str = "INCOMPLETE_DATA", **kw: object) -> FailureToClassify:
    base: dict[str, object] = {
        "source_table": "precompute_failures",
        "processor_name": "PlayerDailyCacheProcessor",
        "item_date": D,
        "entity_id": entity,
        "failure_category": category,
        "can_retry": True,
    }
    base.update(kw)
    return FailureToClassify(**base)  # type: ignore[arg-type]


def regular_player(w: World, skip: set[dt.date] | None = None, team: str = "LAL") -> None:
    for d in w.dates():
        if d in (skip or set()):
            w.teammates(d, team)
            continue
        w.full_game(d, team, "zach")


def verdicts(v) -> list[str]:
    return [m.verdict.value for m in v.missing]


# -- per game ---------------------------------------------------------------------------------------


def test_a_whole_game_missing_from_raw_is_a_data_gap_not_a_dnp() -> None:
    w = World()
    regular_player(w, skip={day(8)})
    w.raw = [r for r in w.raw if r[0] != day(8)]  # the whole box score never arrived
    w.analytics = [a for a in w.analytics if a[0] != day(8)]
    v = classify(failure(), w.evidence())
    assert verdicts(v) == ["RAW_DATA_GAP"]
    assert v.failure_type is FailureType.DATA_GAP and v.is_correctable is True
    assert (v.expected_game_count, v.actual_game_count) == (7, 6)


def test_only_his_teams_side_missing_is_a_raw_gap_even_though_the_game_has_rows() -> None:
    w = World()
    regular_player(w, skip={day(8)})
    w.raw = [r for r in w.raw if not (r[0] == day(8) and r[1] == "LAL")]
    w.teammates(day(8), "BOS")  # the other side is there
    v = classify(failure(), w.evidence())
    assert verdicts(v) == ["RAW_DATA_GAP"]


@pytest.mark.parametrize(
    "status, minutes, reason",
    [
        ("dnp", None, "DNP - Coach's Decision"),
        ("inactive", None, "Injury/Illness - Left Ankle; Sprain"),
        ("dnp", "00:00", "DND - Injury/Illness"),
        ("active", None, None),  # listed without minutes
        ("active", "0:00:00", None),
    ],
)
def test_a_player_listed_without_playing_did_not_play(status: str, minutes: str | None, reason: str | None) -> None:
    w = World()
    regular_player(w, skip={day(8)})
    w.box(day(8), "LAL", "zach", status, minutes, reason)
    v = classify(failure(), w.evidence())
    assert verdicts(v) == ["PLAYER_DNP"]
    assert v.missing[0].dnp_reason == reason
    assert v.failure_type is FailureType.PLAYER_DNP and v.is_correctable is False


def test_analytics_flagging_the_game_as_dnp_is_permanent() -> None:
    w = World()
    regular_player(w, skip={day(8)})
    w.played(day(8), "LAL", "zach", is_dnp=True)
    assert verdicts(classify(failure(), w.evidence())) == ["PLAYER_DNP"]


def test_absent_from_a_present_box_score_means_he_did_not_play() -> None:
    w = World()
    regular_player(w, skip={day(8)})  # teammates listed, he is not (the source omits inactive players)
    v = classify(failure(), w.evidence())
    assert verdicts(v) == ["NOT_IN_BOXSCORE"]
    assert v.failure_type is FailureType.PLAYER_DNP


def test_raw_says_he_played_but_analytics_has_no_row_is_an_analytics_gap() -> None:
    w = World()
    regular_player(w, skip={day(8)})
    w.box(day(8), "LAL", "zach", "active", "24:10")
    v = classify(failure(), w.evidence())
    assert verdicts(v) == ["ANALYTICS_GAP"] and v.failure_type is FailureType.DATA_GAP


def test_an_unresolved_name_on_his_side_may_be_him() -> None:
    w = World()
    regular_player(w, skip={day(8)})
    w.box(day(8), "LAL", "zach", resolved=False)  # same lookup, but the registry did not resolve it
    w.raw[-1] = (day(8), "LAL", "lavine", "active", "30:00", None, False)  # only his last name
    v = classify(failure(entity="zachlavine"), _rename(w, "zach", "zachlavine").evidence())
    assert verdicts(v) == ["NAME_UNRESOLVED"] and v.is_correctable is True


def _rename(w: World, old: str, new: str) -> World:
    w.raw = [(d, t, new if p == old else p, *rest) for d, t, p, *rest in w.raw]  # type: ignore[misc]
    w.analytics = [(d, t, new if p == old else p, dnp) for d, t, p, dnp in w.analytics]
    return w


def test_a_dnp_and_a_raw_gap_make_a_mixed_failure() -> None:
    w = World()
    regular_player(w, skip={day(6), day(10)})
    w.box(day(6), "LAL", "zach", "dnp", None, "DNP - Rest")
    w.raw = [r for r in w.raw if r[0] != day(10)]
    w.analytics = [a for a in w.analytics if a[0] != day(10)]
    v = classify(failure(), w.evidence())
    assert verdicts(v) == ["PLAYER_DNP", "RAW_DATA_GAP"]
    assert v.failure_type is FailureType.MIXED and v.is_correctable is True


# -- the player's team on each date ----------------------------------------------------------------


def test_a_trade_inside_the_window_takes_each_dates_team() -> None:
    w = World()
    # LAL until Jan 6, then BKN (traded on Jan 7); his BKN game of Jan 10 is missing from raw.
    for d in (day(2), day(4), day(6)):
        w.full_game(d, "LAL", "zach")
    for d in (day(8), day(12), day(14)):
        w.full_game(d, "BKN", "zach")
    for d in (day(8), day(10), day(12), day(14)):
        w.teammates(d, "LAL")  # LAL keeps playing without him: not his games any more
    w.analytics = [a for a in w.analytics if not (a[0] == day(10) and a[1] == "BKN")]
    v = classify(failure(), w.evidence())
    assert v.expected_game_count == 7
    assert [(m.game_date, m.team, m.verdict.value) for m in v.missing] == [(day(10), "BKN", "RAW_DATA_GAP")]


def test_a_player_out_for_months_keeps_the_team_of_his_last_appearance() -> None:
    w = World()
    w.box(dt.date(2021, 11, 20), "LAL", "zach", "active", "28:00")  # last game long before the window
    w.played(dt.date(2021, 11, 20), "LAL", "zach")
    for d in w.dates():
        w.teammates(d, "LAL")  # his team's box scores are there; he is not listed at all
    v = classify(failure(), w.evidence())
    assert v.expected_game_count == 7 and v.actual_game_count == 0
    assert set(verdicts(v)) == {"NOT_IN_BOXSCORE"} and v.failure_type is FailureType.PLAYER_DNP


def test_a_player_who_joins_mid_window_is_expected_in_his_teams_games_before_he_arrived() -> None:
    """The processor counts his team's games across the whole window: those before he arrived are missing,
    and permanent (he was not on the roster), while a real gap after he arrived stays correctable."""
    w = World()
    for d in w.dates():
        w.teammates(d, "LAL")
    for d in (day(10), day(12), day(14)):
        w.full_game(d, "LAL", "zach")  # signed on Jan 10
    w.analytics = [a for a in w.analytics if not (a[0] == day(12) and a[2] == "zach")]
    v = classify(failure(), w.evidence())
    assert (v.expected_game_count, v.actual_game_count) == (7, 2)
    assert [(m.game_date, m.team, m.verdict.value) for m in v.missing] == [
        (day(2), "LAL", "NOT_IN_BOXSCORE"),
        (day(4), "LAL", "NOT_IN_BOXSCORE"),
        (day(6), "LAL", "NOT_IN_BOXSCORE"),
        (day(8), "LAL", "NOT_IN_BOXSCORE"),
        (day(12), "LAL", "ANALYTICS_GAP"),
    ]
    assert v.failure_type is FailureType.MIXED


def test_team_on_uses_the_nearest_appearance_at_or_before_the_date() -> None:
    apps = [Appearance(day(2), "LAL", "raw"), Appearance(day(9), "BKN", "raw")]
    assert team_on(apps, day(1)) is None  # before his first appearance he was on no team we know
    assert team_on(apps, day(8)) == "LAL"
    assert team_on(apps, day(9)) == "BKN"
    assert team_on([], day(9)) is None


def test_a_postponed_game_is_not_expected() -> None:
    w = World()
    regular_player(w)
    w.games.append(ScheduledGame("0022199999", day(13), "LAL", "MIA", 1))  # postponed, never played
    v = classify(failure(), w.evidence())
    assert v.failure_type is FailureType.COMPLETE and v.expected_game_count == 7


# -- failure-level outcomes ------------------------------------------------------------------------


def test_a_failure_whose_games_have_all_arrived_is_complete() -> None:
    w = World()
    regular_player(w)
    v = classify(failure(), w.evidence())
    assert v.failure_type is FailureType.COMPLETE and v.missing == ()


def test_explicit_missing_dates_are_classified_exactly() -> None:
    w = World()
    regular_player(w, skip={day(8), day(12)})
    w.box(day(12), "LAL", "zach", "dnp", None, "DNP - Coach's Decision")
    # The row names Jan 8 (missing: not in box score), Jan 12 (dnp) and Jan 4 (has since arrived).
    v = classify(failure(missing_dates=(day(4), day(8), day(12))), w.evidence())
    assert [(m.game_date, m.verdict.value) for m in v.missing] == [
        (day(8), "NOT_IN_BOXSCORE"),
        (day(12), "PLAYER_DNP"),
    ]


def test_an_explicit_date_without_a_game_of_his_team_cannot_be_decided() -> None:
    w = World()
    regular_player(w)
    v = classify(failure(missing_dates=(day(9),)), w.evidence())
    assert v.failure_type is FailureType.UNKNOWN and v.is_correctable is None
    assert verdicts(v) == ["UNDECIDED"]


def test_too_few_expected_games_is_insufficient_history() -> None:
    w = World()
    w.games = [g for g in w.games if g.game_date >= day(10)]  # season starts Jan 10: 3 games
    for d in (day(10), day(12)):
        w.full_game(d, "LAL", "zach")
    w.teammates(day(14), "LAL")
    v = classify(failure(), w.evidence())
    assert v.failure_type is FailureType.INSUFFICIENT_HISTORY and v.expected_game_count == 3
    assert (
        ClassifierConfig(min_expected_games=3)
        and classify(failure(), w.evidence(), ClassifierConfig(min_expected_games=3)).failure_type
        is FailureType.PLAYER_DNP
    )


def test_the_window_is_configurable_per_processor() -> None:
    w = World()
    regular_player(w, skip={day(4)})
    cfg = ClassifierConfig(windows_by_processor={"PlayerDailyCacheProcessor": (Window("days", 7),)},
                           min_expected_games=2)  # fmt: skip
    v = classify(failure(), w.evidence(), cfg)  # window Jan 8 .. Jan 14: the Jan 4 gap is outside
    assert v.failure_type is FailureType.COMPLETE and v.expected_game_count == 4
    other = classify(failure(processor_name="PlayerShotZoneAnalysisProcessor"), w.evidence(), cfg)
    assert other.expected_game_count == 7 and verdicts(other) == ["NOT_IN_BOXSCORE"]  # the default 14 days


def test_bootstrap_categories_with_nothing_missing_are_insufficient_history_not_complete() -> None:
    w = World()
    regular_player(w)
    v = classify(failure(category="INSUFFICIENT_DATA"), w.evidence())
    assert v.failure_type is FailureType.INSUFFICIENT_HISTORY and v.is_correctable is False


@pytest.mark.parametrize(
    "category", ["PROCESSING_ERROR", "calculation_error", "CALCULATION_ERROR", "VALIDATION_ERROR", "BIGQUERY_ERROR"]
)
@pytest.mark.parametrize("can_retry", [True, False])
def test_categories_not_about_missing_data_are_processing_errors(category: str, can_retry: bool) -> None:
    v = classify(failure(category=category, can_retry=can_retry), World().evidence())
    assert v.failure_type is FailureType.PROCESSING_ERROR and v.is_correctable is can_retry


@pytest.mark.parametrize("category", ["SCHEMA_DRIFT", "", "stale_data", "STALE_DATA"])
def test_unknown_or_undecidable_categories_are_unknown_never_guessed(category: str) -> None:
    w = World()
    regular_player(w, skip={day(8)})
    v = classify(failure(category=category), w.evidence())
    assert v.failure_type is FailureType.UNKNOWN and v.is_correctable is None


def test_an_unknown_category_with_explicit_dates_is_judged_on_those_dates() -> None:
    w = World()
    regular_player(w, skip={day(8)})
    v = classify(failure(category="SCHEMA_DRIFT", missing_dates=(day(8),)), w.evidence())
    assert v.failure_type is FailureType.PLAYER_DNP


def test_a_player_never_seen_anywhere_is_unknown() -> None:
    v = classify(failure(entity="ghost"), World().evidence())
    assert v.failure_type is FailureType.UNKNOWN


def test_upcoming_game_processors_are_not_judged_on_past_games() -> None:
    w = World()
    regular_player(w, skip={day(8)})
    v = classify(failure(processor_name="UpcomingPlayerGameContextProcessor", category="UPSTREAM_INCOMPLETE"),
                 w.evidence())  # fmt: skip
    assert v.failure_type is FailureType.UNKNOWN


# -- teams, games, dates, names ---------------------------------------------------------------------


def test_team_entities_are_judged_on_their_sides() -> None:
    w = World()
    regular_player(w)
    w.raw = [r for r in w.raw if not (r[0] == day(6) and r[1] == "LAL")]
    w.analytics = [a for a in w.analytics if not (a[0] == day(6) and a[1] == "LAL")]
    w.analytics = [a for a in w.analytics if not (a[0] == day(10) and a[1] == "LAL")]
    v = classify(failure(entity="LAL", processor_name="TeamDefenseZoneAnalysisProcessor"), w.evidence())
    assert [(m.game_date, m.verdict.value) for m in v.missing] == [(day(6), "RAW_DATA_GAP"), (day(10), "ANALYTICS_GAP")]
    assert v.failure_type is FailureType.DATA_GAP


def test_phase3_game_rows_check_both_sides_of_each_listed_game() -> None:
    w = World()
    regular_player(w)
    w.teammates(day(8), "BOS")
    gid = next(g.game_id for g in w.games if g.game_date == day(8) and g.home == "LAL")
    f = failure(source_table="analytics_failures", processor_name="PlayerGameSummaryProcessor", entity_id=gid,
                entity_type="GAME", category="MISSING_DATA", missing_game_ids=(gid,), item_date=day(8))  # fmt: skip
    assert classify(f, w.evidence()).failure_type is FailureType.COMPLETE  # both sides have arrived
    w.raw = [r for r in w.raw if not (r[0] == day(8) and r[1] == "BOS")]
    v = classify(f, w.evidence())
    assert [(m.team, m.verdict.value) for m in v.missing] == [("BOS", "RAW_DATA_GAP")]
    gamebook_id = f"{day(8):%Y%m%d}_BOS_LAL"
    f2 = failure(source_table="analytics_failures", entity_id=gamebook_id, category="MISSING_DATA", item_date=day(8))
    assert classify(f2, w.evidence()).failure_type is FailureType.DATA_GAP
    missing_game = failure(entity_id="0022100777", entity_type="GAME", category="MISSING_DATA")
    assert classify(missing_game, w.evidence()).failure_type is FailureType.UNKNOWN


def test_date_level_rows_check_every_game_of_the_day_before() -> None:
    w = World()
    regular_player(w)
    for team in ("BOS", "BKN", "MIA"):
        w.teammates(day(14), team)
    f = failure(entity="DATE_LEVEL", category="MISSING_DEPENDENCY", processor_name="MLFeatureStoreProcessor")
    assert classify(f, w.evidence()).failure_type is FailureType.COMPLETE
    w.raw = [r for r in w.raw if not (r[0] == day(14) and r[1] == "MIA")]
    v = classify(f, w.evidence())
    assert v.failure_type is FailureType.DATA_GAP and [m.team for m in v.missing] == ["MIA"]
    quiet = failure(entity="DATE_LEVEL", category="MISSING_DEPENDENCY", item_date=day(2))
    assert classify(quiet, w.evidence()).failure_type is FailureType.UNKNOWN


def test_registry_lookup_failures_are_correctable_until_the_name_resolves() -> None:
    w = World()
    regular_player(w)
    w.box(day(8), "LAL", "lavine", resolved=False)
    f = failure(source_table="analytics_failures", processor_name="PlayerGameSummaryProcessor", entity_id="lavine",
                entity_type="PLAYER", category="REGISTRY_LOOKUP_FAILED", item_date=day(9))  # fmt: skip
    v = classify(f, w.evidence())
    assert v.failure_type is FailureType.DATA_GAP and verdicts(v) == ["NAME_UNRESOLVED"]
    w.raw = [r for r in w.raw if r[2] != "lavine"]
    assert classify(f, w.evidence()).failure_type is FailureType.COMPLETE


@pytest.mark.parametrize(
    "entity, kind",
    [("zachlavine", "PLAYER"), ("LAL", "TEAM"), ("DATE_LEVEL", "DATE"), ("0022100001", "GAME"),
     ("20220101_BOS_LAL", "GAME"), ("lal", "PLAYER")],
)  # fmt: skip
def test_entity_kinds_are_inferred_from_the_id(entity: str, kind: str) -> None:
    assert entity_kind(failure(entity=entity)) == kind


@pytest.mark.parametrize(
    "text, positive",
    [("30:00", True), ("00:00", False), ("0:00:00", False), ("12:34:00", True), ("7.5", True), ("0", False),
     (None, False), ("", False), ("DNP", False), ("00:01", True)],
)  # fmt: skip
def test_minutes_are_read_in_every_format_seen(text: str | None, positive: bool) -> None:
    assert minutes_positive(text) is positive


def test_the_missing_dates_json_lists_each_date_once() -> None:
    w = World()
    regular_player(w, skip={day(6), day(8)})
    assert classify(failure(), w.evidence()).missing_dates_json == '["2022-01-06", "2022-01-08"]'


def test_a_players_season_marks_every_team_game() -> None:
    from lib.classifier import PLAYED, player_timeline

    w = World()
    regular_player(w, skip={day(4), day(6), day(8), day(10)})
    w.box(day(4), "LAL", "zach", "dnp", None, "DNP - Rest")
    w.raw = [r for r in w.raw if r[0] != day(6)]  # box score never arrived
    w.box(day(10), "LAL", "zach", "active", "12:00")  # raw says he played; analytics lost it
    rows = player_timeline("zach", w.evidence(), day(1), day(14))
    outcomes = {g.game_date: (outcome, reason) for g, _team, outcome, reason in rows}
    assert len(rows) == 7
    assert outcomes[day(2)] == (PLAYED, None)
    assert outcomes[day(4)] == ("PLAYER_DNP", "DNP - Rest")
    assert outcomes[day(6)][0] == "RAW_DATA_GAP"
    assert outcomes[day(8)][0] == "NOT_IN_BOXSCORE"
    assert outcomes[day(10)][0] == "ANALYTICS_GAP"
    assert player_timeline("nobody", w.evidence(), day(1), day(14)) == []
