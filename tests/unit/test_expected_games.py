"""The games the processor counted: his team as of the analysis date, that team's games in the window.

Each case is a small league built by hand: what happened (who was on which roster, which box scores
arrived) and what the processor recorded. The expected missing games are written out from that story,
not computed by the rule under test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from lib.classifier import NOT_WITH_TEAM_YET, PLAYED, ClassifierConfig, Evidence, classify, player_timeline
from lib.model import Appearance, FailureToClassify, FailureType, ScheduledGame, Window, parse_windows

D = dt.date(2022, 1, 15)  # analysis date; a 14-day window is Jan 1 .. Jan 14
THIS_SEASON, LAST_SEASON = 2021, 2020


def day(n: int, month: int = 1, year: int = 2022) -> dt.date:
    return dt.date(year, month, n)


@dataclass
class League:
    """LAL v BOS on even days of January and BKN v MIA on odd days, from ``opening`` (this season), and
    last season's April games of the same teams."""

    opening: int = 2
    games: list[ScheduledGame] = field(default_factory=list)
    raw: list[Appearance] = field(default_factory=list)
    analytics: list[Appearance] = field(default_factory=list)
    players: dict[str, list[Appearance]] = field(default_factory=dict)
    cut: dt.date | None = None  # the evidence history starts here

    def __post_init__(self) -> None:
        for n in range(self.opening, 29):
            home, away = ("LAL", "BOS") if n % 2 == 0 else ("MIA", "BKN")
            self.games.append(ScheduledGame(f"00221{n:05d}", day(n), home, away, 3, THIS_SEASON))
        for n in range(1, 15):
            home, away = ("LAL", "BOS") if n % 2 == 0 else ("MIA", "BKN")
            self.games.append(ScheduledGame(f"00220{n:05d}", day(n, 4, 2021), home, away, 3, LAST_SEASON))
        for g in self.games:  # every side has its box score and analytics, with two regulars
            for team in g.teams():
                for mate in ("a", "b"):
                    self.play(f"{team.lower()}{mate}", g.game_date, team)

    def team_dates(self, team: str, first: dt.date, last: dt.date) -> list[dt.date]:
        return [g.game_date for g in self.games if team in g.teams() and first <= g.game_date <= last]

    def play(self, player: str, d: dt.date, team: str, minutes: str = "30:00") -> None:
        self.raw.append(Appearance(d, team, "raw", "active", None, minutes, resolved=True))
        self.analytics.append(Appearance(d, team, "analytics", is_dnp=False))
        self.players.setdefault(player, []).extend([self.raw[-1], self.analytics[-1]])

    def sit(self, player: str, d: dt.date, team: str, reason: str = "DNP - Coach's Decision") -> None:
        self.raw.append(Appearance(d, team, "raw", "dnp", reason, None, resolved=True))
        self.players.setdefault(player, []).append(self.raw[-1])

    def lose_analytics(self, player: str, d: dt.date) -> None:
        self.players[player] = [a for a in self.players[player] if not (a.source == "analytics" and a.game_date == d)]

    def lose_side(self, d: dt.date, team: str) -> None:
        """The box score of one side never arrived (nor, so, its analytics)."""
        for name, apps in self.players.items():
            self.players[name] = [a for a in apps if not (a.game_date == d and a.team == team)]

    def evidence(self) -> Evidence:
        raw_rows: dict[tuple[dt.date, str], int] = {}
        ana_rows: dict[tuple[dt.date, str], int] = {}
        apps: dict[str, list[Appearance]] = {}
        for name, rows in self.players.items():
            kept = [a for a in rows if self.cut is None or a.game_date >= self.cut]
            apps[name] = kept
            for a in kept:
                counts = raw_rows if a.source == "raw" else ana_rows
                counts[(a.game_date, a.team)] = counts.get((a.game_date, a.team), 0) + 1
        return Evidence(self.games, raw_rows, ana_rows, {}, apps)


def failure(entity: str = "rook", **kw: object) -> FailureToClassify:
    base: dict[str, object] = {
        "source_table": "precompute_failures",
        "processor_name": "PlayerDailyCacheProcessor",
        "item_date": D,
        "entity_id": entity,
        "failure_category": "INCOMPLETE_DATA",
        "can_retry": True,
    }
    base.update(kw)
    return FailureToClassify(**base)  # type: ignore[arg-type]


# -- the story of each case, and what the processor counted -------------------------------------------


def rookie_in_his_first_weeks(lg: League) -> None:
    """The season opens Jan 2; the rookie debuts on Jan 8 and plays every game after."""
    for d in lg.team_dates("LAL", day(8), day(28)):
        lg.play("rook", d, "LAL")


def signing_inside_the_window(lg: League) -> None:
    """Signed on Jan 9 after an injury-free season elsewhere in the G League; Jan 4's LAL box score never
    arrived (a real gap, even before he arrived), and his Jan 12 analytics row was lost."""
    for d in lg.team_dates("LAL", day(10), day(28)):
        lg.play("rook", d, "LAL")
    lg.lose_side(day(4), "LAL")
    lg.lose_analytics("rook", day(12))


def ten_day_contract(lg: League) -> None:
    """A 10-day contract: he plays Jan 6, 8 and 10 for LAL, then is not listed again."""
    for d in (day(6), day(8), day(10)):
        lg.play("rook", d, "LAL")


def return_after_a_missed_season_with_a_new_team(lg: League) -> None:
    """Played for BOS last April, missed this season's start, returns with LAL on Jan 10."""
    for d in lg.team_dates("BOS", day(1, 4, 2021), day(14, 4, 2021)):
        lg.play("rook", d, "BOS")
    for d in lg.team_dates("LAL", day(10), day(28)):
        lg.play("rook", d, "LAL")


def history_that_starts_mid_season(lg: League) -> None:
    """The evidence starts on Jan 6 (nothing before it was loaded); he is back from injury on Jan 10."""
    lg.cut = day(6)
    for d in lg.team_dates("LAL", day(2), day(4)) + lg.team_dates("LAL", day(10), day(28)):
        lg.play("rook", d, "LAL")


def traded_inside_the_window(lg: League) -> None:
    """LAL until Jan 6 (on the bench Jan 4), traded to BKN, plays for BKN from Jan 9."""
    lg.play("rook", day(2), "LAL")
    lg.sit("rook", day(4), "LAL")
    lg.play("rook", day(6), "LAL")
    for d in lg.team_dates("BKN", day(9), day(28)):
        lg.play("rook", d, "BKN")


Case = tuple[str, Callable[[League], None], dict[str, object], ClassifierConfig, list[tuple[int, str, str]], str]

CASES: list[Case] = [
    ("rookie", rookie_in_his_first_weeks, {}, ClassifierConfig(),
     [(2, "LAL", "NOT_IN_BOXSCORE"), (4, "LAL", "NOT_IN_BOXSCORE"), (6, "LAL", "NOT_IN_BOXSCORE")], "PLAYER_DNP"),
    ("signing", signing_inside_the_window, {}, ClassifierConfig(),
     [(2, "LAL", "NOT_IN_BOXSCORE"), (4, "LAL", "RAW_DATA_GAP"), (6, "LAL", "NOT_IN_BOXSCORE"),
      (8, "LAL", "NOT_IN_BOXSCORE"), (12, "LAL", "ANALYTICS_GAP")], "MIXED"),
    ("10-day contract", ten_day_contract, {}, ClassifierConfig(),
     [(2, "LAL", "NOT_IN_BOXSCORE"), (4, "LAL", "NOT_IN_BOXSCORE"), (12, "LAL", "NOT_IN_BOXSCORE"),
      (14, "LAL", "NOT_IN_BOXSCORE")], "PLAYER_DNP"),
    ("return with a new team", return_after_a_missed_season_with_a_new_team, {}, ClassifierConfig(),
     [(2, "LAL", "NOT_IN_BOXSCORE"), (4, "LAL", "NOT_IN_BOXSCORE"), (6, "LAL", "NOT_IN_BOXSCORE"),
      (8, "LAL", "NOT_IN_BOXSCORE")], "PLAYER_DNP"),
    ("history from mid-season", history_that_starts_mid_season, {}, ClassifierConfig(),
     [(2, "LAL", "RAW_DATA_GAP"), (4, "LAL", "RAW_DATA_GAP"), (6, "LAL", "NOT_IN_BOXSCORE"),
      (8, "LAL", "NOT_IN_BOXSCORE")], "MIXED"),
    ("explicit dates before he arrived", signing_inside_the_window,
     {"missing_dates": (day(2), day(8), day(12), day(14))}, ClassifierConfig(),
     [(2, "LAL", "NOT_IN_BOXSCORE"), (8, "LAL", "NOT_IN_BOXSCORE"), (12, "LAL", "ANALYTICS_GAP")], "MIXED"),
    ("trade: the new team's whole window", traded_inside_the_window, {}, ClassifierConfig(),
     [(3, "BKN", "NOT_IN_BOXSCORE"), (5, "BKN", "NOT_IN_BOXSCORE"), (7, "BKN", "NOT_IN_BOXSCORE")],
     "PLAYER_DNP"),  # BKN's season opens on Jan 3
    ("trade: before it, the old team", traded_inside_the_window, {"item_date": day(8)}, ClassifierConfig(),
     [(4, "LAL", "PLAYER_DNP")], "INSUFFICIENT_HISTORY"),
    ("trade: a listed date of the old team", traded_inside_the_window, {"missing_dates": (day(4),)},
     ClassifierConfig(), [(4, "LAL", "PLAYER_DNP")], "PLAYER_DNP"),
    ("game-count window", signing_inside_the_window, {},
     ClassifierConfig(default_windows=(Window("games", 3),), min_expected_games=3),
     [(12, "LAL", "ANALYTICS_GAP")], "DATA_GAP"),
    ("day window", signing_inside_the_window, {},
     ClassifierConfig(default_windows=(Window("days", 5),), min_expected_games=2),
     [(12, "LAL", "ANALYTICS_GAP")], "DATA_GAP"),
    ("union of windows", signing_inside_the_window, {},
     ClassifierConfig(windows_by_processor={"PlayerDailyCacheProcessor": parse_windows("2g,5g,3d,9d")},
                      min_expected_games=2),
     [(6, "LAL", "NOT_IN_BOXSCORE"), (8, "LAL", "NOT_IN_BOXSCORE"), (12, "LAL", "ANALYTICS_GAP")], "MIXED"),
    ("a game window stays in the season", rookie_in_his_first_weeks, {},
     ClassifierConfig(default_windows=(Window("games", 10),)),
     [(2, "LAL", "NOT_IN_BOXSCORE"), (4, "LAL", "NOT_IN_BOXSCORE"), (6, "LAL", "NOT_IN_BOXSCORE")], "PLAYER_DNP"),
]  # fmt: skip


#: Every case, as the tests below take them.
each_case = pytest.mark.parametrize(
    ("story", "config", "kw", "missing", "failure_type"),
    [pytest.param(c[1], c[3], c[2], c[4], c[5], id=c[0]) for c in CASES],
)


@each_case
def test_the_expected_games_are_those_the_processor_counted(
    story: Callable[[League], None],
    config: ClassifierConfig,
    kw: dict[str, object],
    missing: list[tuple[int, str, str]],
    failure_type: str,
) -> None:
    lg = League()
    story(lg)
    v = classify(failure(**kw), lg.evidence(), config)
    assert [(m.game_date.day, m.team, m.verdict.value) for m in v.missing] == missing
    # One rule for his team (issue 21): each game the item counts is a game of his strip, of the same team, and
    # one absent from its box score reads there as not in it or, before he arrived, not with the team yet.
    strip = {(g.game_date, team): outcome for g, team, outcome, _ in player_timeline("rook", lg.evidence(), day(1),
                                                                                    day(28))}  # fmt: skip
    for m in v.missing:
        assert (m.game_date, m.team) in strip, (m, sorted(strip))
        shown = strip[(m.game_date, m.team)]
        assert shown in (("NOT_IN_BOXSCORE", NOT_WITH_TEAM_YET) if m.verdict.value == "NOT_IN_BOXSCORE"
                         else (m.verdict.value,)), (m, shown)  # fmt: skip
    assert v.failure_type.value == failure_type
    assert all(m.verdict.value != "UNDECIDED" for m in v.missing)


def test_the_counts_and_the_note_say_which_team_and_window() -> None:
    lg = League()
    signing_inside_the_window(lg)
    v = classify(failure(), lg.evidence())
    assert (v.expected_game_count, v.actual_game_count) == (7, 2)  # LAL's 7 games; he has Jan 10 and 14
    assert "LAL" in v.note and "last 14 days" in v.note


def test_a_player_seen_only_in_another_season_is_unknown_never_guessed() -> None:
    lg = League()
    for d in lg.team_dates("BOS", day(1, 4, 2021), day(14, 4, 2021)):
        lg.play("rook", d, "BOS")  # last April with BOS, nothing this season up to the analysis date
    lg.play("rook", day(20), "LAL")  # he turns up after it: not evidence of his team on Jan 15
    v = classify(failure(), lg.evidence())
    assert v.failure_type is FailureType.UNKNOWN and v.is_correctable is None
    listed = classify(failure(missing_dates=(day(4), day(6))), lg.evidence())
    assert listed.failure_type is FailureType.UNKNOWN
    assert [m.verdict.value for m in listed.missing] == ["UNDECIDED", "UNDECIDED"]


def test_a_player_with_nothing_before_the_analysis_date_is_placed_by_his_first_appearance_after_it() -> None:
    """A rookie whose only game before D lost its box score: the processor placed him, and the first team
    the evidence shows him with (Jan 16, LAL) is the only one he can be on."""
    lg = League()
    for d in lg.team_dates("LAL", day(12), day(28)):
        lg.play("rook", d, "LAL")
    lg.lose_side(day(12), "LAL")
    lg.lose_side(day(14), "LAL")
    v = classify(failure(), lg.evidence())
    assert [(m.game_date.day, m.verdict.value) for m in v.missing] == [
        (2, "NOT_IN_BOXSCORE"), (4, "NOT_IN_BOXSCORE"), (6, "NOT_IN_BOXSCORE"), (8, "NOT_IN_BOXSCORE"),
        (10, "NOT_IN_BOXSCORE"), (12, "RAW_DATA_GAP"), (14, "RAW_DATA_GAP"),
    ]  # fmt: skip
    assert v.failure_type is FailureType.MIXED and "first appearance" in v.note


def test_the_first_days_of_a_season_are_insufficient_history_not_a_verdict_on_last_season() -> None:
    lg = League(opening=10)  # the season opens Jan 10: LAL plays Jan 10, 12, 14 before the 15th
    for d in lg.team_dates("LAL", day(1, 4, 2021), day(14, 4, 2021)) + lg.team_dates("LAL", day(10), day(28)):
        lg.play("rook", d, "LAL")
    lg.lose_analytics("rook", day(12))
    v = classify(failure(failure_category="INSUFFICIENT_DATA"), lg.evidence(), ClassifierConfig(
        default_windows=(Window("games", 10),)))  # fmt: skip
    assert v.expected_game_count == 3  # not last April's games
    assert v.failure_type is FailureType.INSUFFICIENT_HISTORY
    assert [(m.game_date, m.verdict.value) for m in v.missing] == [(day(12), "ANALYTICS_GAP")]


@pytest.mark.parametrize(
    "text, spec",
    [("14d", ("14d",)), ("5g,10g,7d,14d", ("5g", "10g", "7d", "14d")), ("10 games + 14 days", ("10g", "14d")),
     (" 7D ; 7d ", ("7d",)), (["5g", "3 days"], ("5g", "3d"))],
)  # fmt: skip
def test_windows_are_read_from_text(text: str | list[str], spec: tuple[str, ...]) -> None:
    assert tuple(w.spec for w in parse_windows(text)) == spec


@pytest.mark.parametrize("text", ["", "14", "0d", "-3d", "10 weeks", "1000000d", "200g", "d14", "1e3d", "inf"])
def test_a_bad_window_is_refused_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)window"):
        parse_windows(text)


def test_a_signings_season_shows_the_games_before_he_arrived_as_not_with_the_team_yet() -> None:
    lg = League()
    signing_inside_the_window(lg)
    rows = player_timeline("rook", lg.evidence(), day(1), day(14))
    outcomes = {g.game_date.day: (team, outcome) for g, team, outcome, _ in rows}
    assert outcomes == {
        2: ("LAL", NOT_WITH_TEAM_YET),
        4: ("LAL", "RAW_DATA_GAP"),
        6: ("LAL", NOT_WITH_TEAM_YET),
        8: ("LAL", NOT_WITH_TEAM_YET),
        10: ("LAL", PLAYED),
        12: ("LAL", "ANALYTICS_GAP"),
        14: ("LAL", PLAYED),
    }


def test_a_traded_players_season_follows_each_dates_team() -> None:
    lg = League()
    traded_inside_the_window(lg)
    rows = player_timeline("rook", lg.evidence(), day(1), day(14))
    assert [(g.game_date.day, team, outcome) for g, team, outcome, _ in rows] == [
        (2, "LAL", PLAYED),
        (3, "BKN", NOT_WITH_TEAM_YET),  # BKN's games before he arrived: what an item after Jan 9 counts
        (4, "LAL", "PLAYER_DNP"),
        (5, "BKN", NOT_WITH_TEAM_YET),
        (6, "LAL", PLAYED),
        (7, "BKN", NOT_WITH_TEAM_YET),
        (8, "LAL", "NOT_IN_BOXSCORE"),  # nothing yet says he has left: his last game was LAL's
        (9, "BKN", PLAYED), (11, "BKN", PLAYED), (13, "BKN", PLAYED),
    ]  # fmt: skip


def test_a_return_to_his_first_team_shows_its_games_before_he_rejoined() -> None:
    """LAL, traded to BKN, back to LAL: an item after his return counts LAL's games of the BKN spell, and the strip
    shows them on LAL's row as not with the team yet (the team rule of issue 21, a return)."""
    lg = League()
    lg.play("rook", day(2), "LAL")
    lg.play("rook", day(4), "LAL")
    for d in lg.team_dates("BKN", day(5), day(8)):
        lg.play("rook", d, "BKN")
    for d in lg.team_dates("LAL", day(12), day(28)):
        lg.play("rook", d, "LAL")
    v = classify(failure(item_date=day(15)), lg.evidence())
    strip = {(g.game_date, team): outcome for g, team, outcome, _ in player_timeline("rook", lg.evidence(), day(1),
                                                                                    day(28))}  # fmt: skip
    counted = [(m.game_date, m.team) for m in v.missing if m.verdict.value == "NOT_IN_BOXSCORE"]
    assert counted and all(strip.get(k) == NOT_WITH_TEAM_YET for k in counted), (counted, strip)
