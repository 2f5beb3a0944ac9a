"""Did the player not play, or is data missing? Evidence in, verdict out: no I/O, no clock.

For a player-level failure on analysis date D, the expected games are the final games of the
player's team with ``D - lookback <= game_date < D``, where his team on each date is the team of his
nearest appearance (raw or analytics, any status) at or before that date, looking back as far as the
evidence goes (a traded player takes each date's team; a player out for months keeps the team of his
last appearance). Each expected game without an analytics row of his that is not flagged ``is_dnp``
is missing, and gets one verdict:

* PLAYER_DNP: the raw box score lists him as dnp or inactive or without minutes, or analytics has his
  row flagged ``is_dnp``;
* NOT_IN_BOXSCORE: his team's side of the game has raw rows and he is not among them;
* RAW_DATA_GAP: no raw rows for his team's side of the game (checked before blaming the player);
* ANALYTICS_GAP: raw says he played (active, minutes > 0) and analytics has no row;
* NAME_UNRESOLVED: his team's side has a row with an unresolved name that may be him.

The first two are permanent, the last three correctable. The failure's type follows from its games
(see :func:`combine`). Categories that are not about missing data are PROCESSING_ERROR; evidence that
cannot decide gives UNKNOWN, never a guess.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lib.model import (
    Appearance,
    FailureToClassify,
    FailureType,
    GameVerdict,
    MissingGame,
    ScheduledGame,
    Verdict,
)

#: Categories that say something other than "data is missing": the processor broke.
NON_DATA_CATEGORIES = frozenset(
    {
        "PROCESSING_ERROR",
        "CALCULATION_ERROR",
        "VALIDATION_ERROR",
        "FEATURE_VALIDATION_ERROR",
        "BIGQUERY_ERROR",
        "DATA_ERROR",
        "CIRCUIT_BREAKER_ACTIVE",
    }
)
#: "Not enough history yet": when nothing is missing, the verdict is INSUFFICIENT_HISTORY, not COMPLETE.
BOOTSTRAP_CATEGORIES = frozenset({"INSUFFICIENT_DATA", "MINIMUM_THRESHOLD_NOT_MET", "EXPECTED_INCOMPLETE"})
#: Categories about missing games or records, which the evidence tables can check.
MISSING_DATA_CATEGORIES = BOOTSTRAP_CATEGORIES | frozenset(
    {
        "INCOMPLETE_DATA",
        "INCOMPLETE_UPSTREAM",
        "UPSTREAM_INCOMPLETE",
        "INCOMPLETE_DATA_SKIPPED",
        "MISSING_DATA",
        "MISSING_DEPENDENCY",
        "MISSING_DEPENDENCIES",
        "MISSING_UPSTREAM_IN_BACKFILL",
        "REGISTRY_LOOKUP_FAILED",
    }
)
#: Processors that fail on upcoming games, which no evidence table covers yet.
FORWARD_LOOKING_PROCESSORS = frozenset({"UpcomingPlayerGameContextProcessor", "UpcomingTeamGameContextProcessor"})

_TEAM = re.compile(r"[A-Z]{2,3}")
_SCHEDULE_ID = re.compile(r"\d{10}")
_GAMEBOOK_ID = re.compile(r"(\d{8})_([A-Z]{2,3})_([A-Z]{2,3})")


@dataclass(frozen=True)
class ClassifierConfig:
    lookback_days: int = 14
    lookback_by_processor: Mapping[str, int] = field(default_factory=dict)
    min_expected_games: int = 5
    date_level_lookback_days: int = 1

    def lookback(self, processor: str) -> int:
        return self.lookback_by_processor.get(processor, self.lookback_days)


class Evidence:
    """Schedule, raw and analytics facts for a batch of failures, indexed for the classifier."""

    def __init__(
        self,
        games: Iterable[ScheduledGame],
        raw_rows: Mapping[tuple[dt.date, str], int],
        analytics_rows: Mapping[tuple[dt.date, str], int],
        unresolved: Mapping[tuple[dt.date, str], Sequence[str]],
        appearances: Mapping[str, Sequence[Appearance]],
    ) -> None:
        self.raw_rows = raw_rows
        self.analytics_rows = analytics_rows
        self.unresolved = unresolved
        self.games_by_team: dict[str, list[ScheduledGame]] = defaultdict(list)
        self.game_by_id: dict[str, ScheduledGame] = {}
        self.games_by_date: dict[dt.date, list[ScheduledGame]] = defaultdict(list)
        for g in sorted(games, key=lambda g: (g.game_date, g.game_id)):
            self.games_by_team[g.home].append(g)
            self.games_by_team[g.away].append(g)
            self.games_by_date[g.game_date].append(g)
            self.game_by_id[g.game_id] = g
            self.game_by_id[f"{g.game_date:%Y%m%d}_{g.away}_{g.home}"] = g
        self._team_dates = {t: [g.game_date for g in gs] for t, gs in self.games_by_team.items()}
        self.appearances = {p: sorted(a, key=lambda x: x.game_date) for p, a in appearances.items()}

    def team_games(self, team: str, start: dt.date, end: dt.date) -> list[ScheduledGame]:
        """Final games of ``team`` with ``start <= game_date < end``."""
        dates = self._team_dates.get(team, [])
        lo, hi = bisect.bisect_left(dates, start), bisect.bisect_left(dates, end)
        return [g for g in self.games_by_team[team][lo:hi] if g.is_final]

    def game_of(self, team: str, day: dt.date) -> ScheduledGame | None:
        games = self.team_games(team, day, day + dt.timedelta(days=1))
        return games[0] if games else None


def entity_kind(failure: FailureToClassify) -> str:
    """PLAYER, TEAM, GAME or DATE, from the failure's own entity_type or the shape of its entity id."""
    if failure.entity_type in ("PLAYER", "TEAM", "GAME"):
        return failure.entity_type
    if failure.entity_id == "DATE_LEVEL":
        return "DATE"
    if _TEAM.fullmatch(failure.entity_id):
        return "TEAM"
    if _SCHEDULE_ID.fullmatch(failure.entity_id) or _GAMEBOOK_ID.fullmatch(failure.entity_id):
        return "GAME"
    return "PLAYER"


def classify(failure: FailureToClassify, evidence: Evidence, config: ClassifierConfig | None = None) -> Verdict:
    config = config or ClassifierConfig()
    category = failure.failure_category.strip().upper()
    if category in NON_DATA_CATEGORIES:
        return Verdict(FailureType.PROCESSING_ERROR, failure.can_retry, note=f"{category} is not about missing data")
    if failure.processor_name in FORWARD_LOOKING_PROCESSORS:
        return Verdict(FailureType.UNKNOWN, None, note="fails on upcoming games, which no evidence table covers")
    explicit = failure.missing_dates is not None or failure.missing_game_ids is not None
    if category not in MISSING_DATA_CATEGORIES and not explicit:
        return Verdict(FailureType.UNKNOWN, None, note=f"category {category} cannot be checked against game evidence")
    bootstrap = category in BOOTSTRAP_CATEGORIES
    kind = entity_kind(failure)
    if kind == "PLAYER" and category == "REGISTRY_LOOKUP_FAILED":
        return _unresolved_name(failure, evidence)
    if kind == "PLAYER":
        return _player(failure, evidence, config, bootstrap)
    if kind == "TEAM":
        start = failure.item_date - dt.timedelta(days=config.lookback(failure.processor_name))
        games = [(g, failure.entity_id) for g in evidence.team_games(failure.entity_id, start, failure.item_date)]
        if failure.missing_game_ids is not None:
            games = [(g, failure.entity_id) for g in _games_by_id(failure, evidence) if g.is_final]
        return _sides(failure, evidence, config, games, bootstrap)
    if kind == "GAME":
        ids = failure.missing_game_ids or (failure.entity_id,)
        found = [evidence.game_by_id.get(i) for i in ids]
        if any(g is None for g in found):
            unknown = [i for i, g in zip(ids, found, strict=True) if g is None]
            return Verdict(FailureType.UNKNOWN, None, note=f"game(s) not in the schedule: {', '.join(unknown)}")
        sides = [(g, t) for g in found if g is not None and g.is_final for t in g.teams()]
        return _sides(failure, evidence, config, sides, bootstrap, judge_history=False)
    # DATE_LEVEL: every game of the days before the analysis date.
    start = failure.item_date - dt.timedelta(days=config.date_level_lookback_days)
    sides = [
        (g, t)
        for day, games in sorted(evidence.games_by_date.items())
        if start <= day < failure.item_date
        for g in games
        if g.is_final
        for t in g.teams()
    ]
    if not sides:
        return Verdict(FailureType.UNKNOWN, None, note="no final game before the analysis date to check")
    return _sides(failure, evidence, config, sides, bootstrap, judge_history=False)


def combine(
    missing: Sequence[MissingGame],
    *,
    expected: int | None,
    actual: int | None,
    min_expected: int,
    bootstrap: bool,
    judge_history: bool = True,
) -> Verdict:
    """A failure's verdict from its missing games."""

    def verdict(failure_type: FailureType, correctable: bool | None, note: str = "") -> Verdict:
        return Verdict(failure_type, correctable, expected, actual, tuple(missing), raw_data_checked=True, note=note)

    if any(m.verdict is GameVerdict.UNDECIDED for m in missing):
        return verdict(FailureType.UNKNOWN, None, "a missing game cannot be placed in the schedule")
    correctable = [m for m in missing if m.is_correctable]
    if judge_history and expected is not None and expected < min_expected:
        note = f"{expected} expected games in the window (fewer than {min_expected})"
        return verdict(FailureType.INSUFFICIENT_HISTORY, bool(correctable), note)
    if not missing:
        if bootstrap:
            return verdict(FailureType.INSUFFICIENT_HISTORY, False, "every expected game is present: history is short")
        return verdict(FailureType.COMPLETE, True, "nothing is missing any more")
    if len(correctable) == len(missing):
        return verdict(FailureType.DATA_GAP, True)
    if not correctable:
        return verdict(FailureType.PLAYER_DNP, False)
    return verdict(FailureType.MIXED, True)


# -- players ------------------------------------------------------------------------------------


def team_on(appearances: Sequence[Appearance], day: dt.date) -> str | None:
    """The team of his nearest appearance at or before ``day`` (None before his first appearance:
    games played before a player joined the league or a roster are not his)."""
    dates = [a.game_date for a in appearances]
    i = bisect.bisect_right(dates, day)
    return appearances[i - 1].team if i else None


def minutes_positive(text: str | None) -> bool:
    """'MM:SS', 'MM:SS:00' or a decimal number of minutes, greater than zero."""
    if text is None:
        return False
    value = text.strip()
    if not value:
        return False
    try:
        if ":" in value:
            parts = [float(p) for p in value.split(":")]
            return parts[0] * 60 + (parts[1] if len(parts) > 1 else 0) > 0
        return float(value) > 0
    except ValueError:
        return False


def _player(failure: FailureToClassify, ev: Evidence, config: ClassifierConfig, bootstrap: bool) -> Verdict:
    apps = ev.appearances.get(failure.entity_id, ())
    if not apps:
        return Verdict(FailureType.UNKNOWN, None, note="no raw or analytics row for this player: his team is unknown")
    day = failure.item_date
    start = day - dt.timedelta(days=config.lookback(failure.processor_name))
    on_date: dict[dt.date, list[Appearance]] = defaultdict(list)
    for a in apps:
        on_date[a.game_date].append(a)
    played = {a.game_date for a in apps if a.source == "analytics" and a.is_dnp is not True}

    expected: list[tuple[ScheduledGame, str]] = []
    for team in sorted({a.team for a in apps}):
        for g in ev.team_games(team, start, day):
            if team_on(apps, g.game_date) == team:
                expected.append((g, team))
    expected.sort(key=lambda gt: gt[0].game_date)
    actual = sum(1 for d in played if start <= d < day)

    missing: list[MissingGame] = []
    if failure.missing_dates is not None:
        for d in sorted(set(failure.missing_dates)):
            if d in played:
                continue  # it has arrived since the run
            team = team_on(apps, d) or ""
            game = ev.game_of(team, d)
            if game is None:
                missing.append(MissingGame(d, "", team, GameVerdict.UNDECIDED))
            else:
                missing.append(_player_game(failure.entity_id, game, team, on_date.get(d, []), ev))
    else:
        for game, team in expected:
            if game.game_date not in played:
                missing.append(_player_game(failure.entity_id, game, team, on_date.get(game.game_date, []), ev))
    return combine(
        missing,
        expected=len(expected),
        actual=actual,
        min_expected=config.min_expected_games,
        bootstrap=bootstrap,
    )


def _player_game(
    lookup: str, game: ScheduledGame, team: str, that_day: Sequence[Appearance], ev: Evidence
) -> MissingGame:
    def verdict(v: GameVerdict, reason: str | None = None) -> MissingGame:
        return MissingGame(game.game_date, game.game_id, team, v, reason)

    raw = [a for a in that_day if a.source == "raw" and a.team == team]
    reason = next((a.dnp_reason for a in raw if a.dnp_reason), None)
    if any(a.source == "analytics" and a.is_dnp for a in that_day):
        return verdict(GameVerdict.PLAYER_DNP, reason)
    if raw:
        row = raw[0]
        if (row.status or "").lower() in ("dnp", "inactive") or not minutes_positive(row.minutes):
            return verdict(GameVerdict.PLAYER_DNP, reason)
        return verdict(GameVerdict.ANALYTICS_GAP)
    # Whole game or his side missing looks exactly like "not in the box score": check the side first.
    if ev.raw_rows.get((game.game_date, team), 0) == 0:
        return verdict(GameVerdict.RAW_DATA_GAP)
    if any(_may_be(lookup, u) for u in ev.unresolved.get((game.game_date, team), ())):
        return verdict(GameVerdict.NAME_UNRESOLVED)
    return verdict(GameVerdict.NOT_IN_BOXSCORE)


def _may_be(lookup: str, unresolved: str) -> bool:
    """An unresolved name (often only a last name) that could be this player."""
    return len(unresolved) >= 3 and unresolved in lookup


def _unresolved_name(failure: FailureToClassify, ev: Evidence) -> Verdict:
    rows = [
        a for a in ev.appearances.get(failure.entity_id, ()) if a.source == "raw" and a.game_date <= failure.item_date
    ]
    pending = [a for a in rows if not a.resolved]
    if pending:
        games = tuple(
            MissingGame(a.game_date, (g.game_id if (g := ev.game_of(a.team, a.game_date)) else ""), a.team,
                        GameVerdict.NAME_UNRESOLVED)
            for a in pending
        )  # fmt: skip
        return Verdict(FailureType.DATA_GAP, True, missing=games, raw_data_checked=True,
                       note="raw rows carry this unresolved name: fix the player registry")  # fmt: skip
    return Verdict(FailureType.COMPLETE, True, raw_data_checked=True, note="no unresolved raw row of this name is left")


# -- teams, games, dates --------------------------------------------------------------------------


def _games_by_id(failure: FailureToClassify, ev: Evidence) -> list[ScheduledGame]:
    return [g for i in failure.missing_game_ids or () if (g := ev.game_by_id.get(i)) is not None]


def _sides(
    failure: FailureToClassify,
    ev: Evidence,
    config: ClassifierConfig,
    sides: Sequence[tuple[ScheduledGame, str]],
    bootstrap: bool,
    *,
    judge_history: bool = True,
) -> Verdict:
    """Each team side of each game: raw rows present? analytics rows present?"""
    missing = []
    for game, team in sides:
        if ev.raw_rows.get((game.game_date, team), 0) == 0:
            missing.append(MissingGame(game.game_date, game.game_id, team, GameVerdict.RAW_DATA_GAP))
        elif ev.analytics_rows.get((game.game_date, team), 0) == 0:
            missing.append(MissingGame(game.game_date, game.game_id, team, GameVerdict.ANALYTICS_GAP))
    return combine(
        missing,
        expected=len(sides),
        actual=len(sides) - len(missing),
        min_expected=config.min_expected_games,
        bootstrap=bootstrap,
        judge_history=judge_history and failure.missing_game_ids is None,
    )


# -- a player's season, game by game ------------------------------------------------------------------

PLAYED = "PLAYED"


def player_timeline(
    lookup: str, ev: Evidence, start: dt.date, end: dt.date
) -> list[tuple[ScheduledGame, str, str, str | None]]:
    """Every final game of his team(s) with ``start <= date <= end``: (game, team, outcome, reason).

    The outcome is PLAYED, or the verdict a missing game would get (PLAYER_DNP, NOT_IN_BOXSCORE,
    RAW_DATA_GAP, ANALYTICS_GAP, NAME_UNRESOLVED), by the same rules as the classifier.
    """
    apps = ev.appearances.get(lookup, ())
    on_date: dict[dt.date, list[Appearance]] = defaultdict(list)
    for a in apps:
        on_date[a.game_date].append(a)
    played = {a.game_date for a in apps if a.source == "analytics" and a.is_dnp is not True}
    out: list[tuple[ScheduledGame, str, str, str | None]] = []
    for team in sorted({a.team for a in apps}):
        for g in ev.team_games(team, start, end + dt.timedelta(days=1)):
            if team_on(apps, g.game_date) != team:
                continue
            if g.game_date in played:
                out.append((g, team, PLAYED, None))
            else:
                m = _player_game(lookup, g, team, on_date.get(g.game_date, []), ev)
                out.append((g, team, m.verdict.value, m.dnp_reason))
    return sorted(out, key=lambda row: row[0].game_date)
