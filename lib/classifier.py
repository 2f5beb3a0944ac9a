"""Did the player not play, or is data missing? Evidence in, verdict out: no I/O, no clock.

The expected games of a player-level failure on analysis date D are **the games the processor counted**:
the pipeline's completeness check takes the player's team as of D and counts that team's final games in
the processor's window (the last N days before D, the last N games of the team this season, or the union
of several such windows). His team as of D is the team of his latest appearance (raw or analytics, any
status) before D in the same season (``nbac_schedule.season_year``), or failing that his appearance on D.
So a player traded inside the window is expected in his new team's games of the whole window, a signing
or a rookie in his team's games before he first appeared, and a player out for months in the games of the
team of his last appearance this season. A player with no appearance this season up to D but one in an earlier
season has no team we can know (the pipeline may still count his old team): UNKNOWN, never a guess; a
player with no appearance at all before D takes the team of his first appearance after D this season.

Each expected game (or each date the failure row lists itself) without an analytics row of his that is
not flagged ``is_dnp`` is missing, and gets one verdict, judged on his team's side of the game:

* PLAYER_DNP: the raw box score lists him as dnp or inactive or without minutes, or analytics has his
  row flagged ``is_dnp``;
* NOT_IN_BOXSCORE: his team's side of the game has raw rows and he is not among them (not listed, or
  not with the team yet);
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
from dataclasses import dataclass, field, replace

from lib.model import (
    Appearance,
    FailureToClassify,
    FailureType,
    GameVerdict,
    MissingGame,
    ScheduledGame,
    Verdict,
    Window,
    windows_label,
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
_SCHEDULE_ID = re.compile(r"[0-9]{10}")
_GAMEBOOK_ID = re.compile(r"([0-9]{8})_([A-Z]{2,3})_([A-Z]{2,3})")
#: The whitespace trimmed from categories (the same set in the engine's SQL).
_SPACE = " \t\n\r\f\v"
# Text formats, written once for this module and for the engine's SQL (RE2 and Python read them alike).
#: Minutes as the box scores write them: "MM:SS", "MM:SS:00", or a decimal number of minutes.
MINUTES_PATTERN = r"[ \t\n\r]*([0-9]+(?:\.[0-9]+)?)(?::([0-9]+(?:\.[0-9]+)?))?(?::[0-9]+(?:\.[0-9]+)?)?[ \t\n\r]*"
#: A JSON list as processors write it: strings without escapes, or nulls. Anything else (other JSON, escapes,
#: numbers) is treated as absent.
JSON_LIST_PATTERN = (
    r'[ \t\n\r]*\[[ \t\n\r]*(?:(?:"[^"\\]*"|null)(?:[ \t\n\r]*,[ \t\n\r]*(?:"[^"\\]*"|null))*)?[ \t\n\r]*\][ \t\n\r]*'
)
JSON_STRING_PATTERN = r'"([^"\\]*)"'
#: A listed date: its first ten characters.
ISO_DATE_PATTERN = r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}"
_MINUTES = re.compile(MINUTES_PATTERN)

#: How far back of the analysis date a player's appearances count (his team is taken within the season; an
#: appearance in an earlier season makes a player with none this season unknown rather than placed), and how
#: far past it his first appearance is looked for when nothing of his precedes it.
HISTORY_DAYS = 400
LOOKAHEAD_DAYS = 60


@dataclass(frozen=True)
class ClassifierConfig:
    """Each processor's window (``windows_by_processor``; otherwise ``default_windows``; otherwise the
    last ``lookback_days`` days), and the fewest expected games worth judging."""

    lookback_days: int = 14
    windows_by_processor: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)
    default_windows: tuple[Window, ...] = ()
    min_expected_games: int = 5
    date_level_lookback_days: int = 1

    def __post_init__(self) -> None:
        Window("days", self.lookback_days)  # validates the range
        for processor, windows in self.windows_by_processor.items():
            if not windows:
                raise ValueError(f"No window configured for {processor}")

    def windows(self, processor: str) -> tuple[Window, ...]:
        return self.windows_by_processor.get(processor) or self.fallback_windows()

    def fallback_windows(self) -> tuple[Window, ...]:
        """The window of every processor without one of its own."""
        return self.default_windows or (Window("days", self.lookback_days),)

    def window_label(self, processor: str) -> str:
        return windows_label(self.windows(processor))

    def reach_days(self) -> int:
        """The furthest any configured window reaches before its analysis date, in days."""
        every = [*self.default_windows, *(w for ws in self.windows_by_processor.values() for w in ws)]
        return max([self.lookback_days, self.date_level_lookback_days, *(w.reach_days for w in every)])


class Evidence:
    """Schedule, raw and analytics facts for a batch of failures, indexed for the classifier."""

    def __init__(
        self,
        games: Iterable[ScheduledGame],
        raw_rows: Mapping[tuple[dt.date, str], int],
        analytics_rows: Mapping[tuple[dt.date, str], int],
        unresolved: Mapping[tuple[dt.date, str], Sequence[str]],
        appearances: Mapping[str, Sequence[Appearance]],
        season_starts: Mapping[int, dt.date] | None = None,
    ) -> None:
        games = list(dict.fromkeys(games))  # a schedule row loaded twice is one game
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
        self.appearances = {p: sorted(a, key=_appearance_order) for p, a in appearances.items()}
        starts: dict[int, dt.date] = dict(season_starts or {})
        for g in games:
            if g.season is not None and (g.season not in starts or g.game_date < starts[g.season]):
                starts[g.season] = g.game_date
        self._season_starts = sorted((d, s) for s, d in starts.items())

    def season_of(self, day: dt.date) -> int | None:
        """The season a date belongs to: that of the latest season start at or before it (None without
        season information: everything is one season)."""
        if not self._season_starts:
            return None
        i = bisect.bisect_right(self._season_starts, (day, 10**9))
        return self._season_starts[i - 1][1] if i else self._season_starts[0][1] - 1

    def season_start(self, season: int | None) -> dt.date:
        return next((d for d, s in self._season_starts if s == season), dt.date.min)

    def team_games(self, team: str, start: dt.date, end: dt.date) -> list[ScheduledGame]:
        """Final games of ``team`` with ``start <= game_date < end``."""
        dates = self._team_dates.get(team, [])
        lo, hi = bisect.bisect_left(dates, start), bisect.bisect_left(dates, end)
        return [g for g in self.games_by_team[team][lo:hi] if g.is_final]

    def game_of(self, team: str, day: dt.date) -> ScheduledGame | None:
        games = self.team_games(team, day, day + dt.timedelta(days=1))
        return games[0] if games else None

    def window_games(self, team: str, day: dt.date, windows: Sequence[Window]) -> list[ScheduledGame]:
        """The union of ``team``'s final games in each window before ``day``, within ``day``'s season."""
        season = self.season_of(day)
        chosen: dict[str, ScheduledGame] = {}
        for w in windows:
            if w.kind == "days":
                games = self.team_games(team, day - dt.timedelta(days=w.size), day)
            else:
                games = self.team_games(team, self.season_start(season), day)[-w.size :]
            for g in games:
                if season is None or self.season_of(g.game_date) == season:
                    chosen[g.game_id] = g
        return sorted(chosen.values(), key=lambda g: (g.game_date, g.game_id))

    def window_start(self, team: str, day: dt.date, windows: Sequence[Window]) -> dt.date:
        """The first day any of the windows covers (for counting the games he has)."""
        starts = [day - dt.timedelta(days=w.size) for w in windows if w.kind == "days"]
        games = self.window_games(team, day, [w for w in windows if w.kind == "games"])
        starts += [g.game_date for g in games[:1]]
        return min(starts, default=day)


def _appearance_order(a: Appearance) -> tuple[dt.date, str, str]:
    """Appearances in date order; on one date raw after analytics, then by team: every tie is broken the
    same way here and in the engine."""
    return (a.game_date, a.source, a.team)


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
    category = failure.failure_category.strip(_SPACE).upper()
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
        windows = config.windows(failure.processor_name)
        games = [(g, failure.entity_id) for g in evidence.window_games(failure.entity_id, failure.item_date, windows)]
        if failure.missing_game_ids is not None:
            listed = _games_by_id(failure, evidence, failure.missing_game_ids)
            games = [(g, failure.entity_id) for g in listed if g is not None and g.is_final]
        return _sides(failure, evidence, config, games, bootstrap)
    if kind == "GAME":
        ids = failure.missing_game_ids or (failure.entity_id,)
        found = _games_by_id(failure, evidence, ids)
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
    """The team of his nearest appearance at or before ``day`` (None before his first appearance)."""
    dates = [a.game_date for a in appearances]
    i = bisect.bisect_right(dates, day)
    return appearances[i - 1].team if i else None


def team_as_of(appearances: Sequence[Appearance], day: dt.date) -> str | None:
    """His team as of analysis date ``day``, as the pipeline's completeness check takes it: the team of his
    latest appearance before ``day``, or failing that of his appearance on ``day``. ``appearances`` are
    one season's, sorted by date."""
    before = [a for a in appearances if a.game_date < day]
    if before:
        return before[-1].team
    on_day = [a for a in appearances if a.game_date == day]
    return on_day[-1].team if on_day else None


def team_on_date(appearances: Sequence[Appearance], day: dt.date) -> str | None:
    """His team on a game date of one season: that of his nearest appearance at or before it, or, before
    his first appearance of the season (a rookie, a signing, a return), that of his first one after it."""
    return team_on(appearances, day) or (appearances[0].team if appearances else None)


def minutes_positive(text: str | None) -> bool:
    """'MM:SS', 'MM:SS:00' or a decimal number of minutes, greater than zero; anything else is not."""
    match = _MINUTES.fullmatch(text) if text is not None else None
    if match is None:
        return False
    return float(match.group(1)) > 0 or float(match.group(2) or 0) > 0


def _season_appearances(apps: Sequence[Appearance], ev: Evidence, day: dt.date) -> list[Appearance]:
    """His appearances in ``day``'s season, up to and including ``day``."""
    season = ev.season_of(day)
    return [a for a in apps if a.game_date <= day and ev.season_of(a.game_date) == season]


def _bounded(apps: Sequence[Appearance], day: dt.date) -> list[Appearance]:
    """The appearances that count for an item dated ``day``."""
    first, last = day - dt.timedelta(days=HISTORY_DAYS), day + dt.timedelta(days=LOOKAHEAD_DAYS)
    return [a for a in apps if first <= a.game_date <= last]


def _player(failure: FailureToClassify, ev: Evidence, config: ClassifierConfig, bootstrap: bool) -> Verdict:
    day = failure.item_date
    apps = _bounded(ev.appearances.get(failure.entity_id, ()), day)
    if not apps:
        return Verdict(FailureType.UNKNOWN, None, note="no raw or analytics row for this player: his team is unknown")
    windows = config.windows(failure.processor_name)
    window = windows_label(windows)
    season_apps = _season_appearances(apps, ev, day)
    team = team_as_of(season_apps, day)
    placed = ""
    if team is None and not any(a.game_date <= day for a in apps):
        # Nothing of his precedes D, in this season or an earlier one (a rookie or a signing whose first
        # games' rows are missing, an evidence history that starts late): the processor placed him on a
        # roster, and the team of his first appearance after D this season is the only one he can be on.
        season = ev.season_of(day)
        later = [a for a in apps if a.game_date > day and ev.season_of(a.game_date) == season]
        if later:
            team = later[0].team
            placed = f"; placed by his first appearance, {later[0].game_date}, nothing of his before it"
    if team is None:
        note = f"no appearance of his this season up to {day}: his team is unknown ({window})"
        listed = sorted(set(failure.missing_dates or ()))
        undecided = tuple(MissingGame(d, "", "", GameVerdict.UNDECIDED) for d in listed)
        return Verdict(FailureType.UNKNOWN, None, missing=undecided, note=note)
    on_date: dict[dt.date, list[Appearance]] = defaultdict(list)
    for a in apps:
        on_date[a.game_date].append(a)
    played = {a.game_date for a in apps if a.source == "analytics" and a.is_dnp is not True}
    expected = ev.window_games(team, day, windows)
    start = ev.window_start(team, day, windows)
    actual = sum(1 for d in played if start <= d < day)

    missing: list[MissingGame] = []
    if failure.missing_dates is not None:
        for d in sorted(set(failure.missing_dates)):
            if d in played:
                continue  # it has arrived since the run
            if not day - dt.timedelta(days=HISTORY_DAYS) <= d <= day:
                missing.append(MissingGame(d, "", team, GameVerdict.UNDECIDED))  # not a game of this run
                continue
            game, side = ev.game_of(team, d), team
            if game is None:  # a date of another team of his (a processor that takes each date's team)
                other = team_on_date(season_apps, d)
                game, side = (ev.game_of(other, d), other) if other else (None, "")
            if game is None:
                missing.append(MissingGame(d, "", team, GameVerdict.UNDECIDED))
            else:
                missing.append(_player_game(failure.entity_id, game, side, on_date.get(d, []), ev))
    else:
        for game in expected:
            if game.game_date not in played:
                missing.append(_player_game(failure.entity_id, game, team, on_date.get(game.game_date, []), ev))
    verdict = combine(
        missing,
        expected=len(expected),
        actual=actual,
        min_expected=config.min_expected_games,
        bootstrap=bootstrap,
    )
    context = f"{team}, {window}{placed}"
    return replace(verdict, note=f"{verdict.note} ({context})" if verdict.note else context)


def _player_game(
    lookup: str, game: ScheduledGame, team: str, that_day: Sequence[Appearance], ev: Evidence
) -> MissingGame:
    def verdict(v: GameVerdict, reason: str | None = None) -> MissingGame:
        return MissingGame(game.game_date, game.game_id, team, v, reason)

    raw = [a for a in that_day if a.source == "raw" and a.team == team]
    reason = min((a.dnp_reason for a in raw if a.dnp_reason), default=None)
    if any(a.source == "analytics" and a.is_dnp and a.team == team for a in that_day):
        return verdict(GameVerdict.PLAYER_DNP, reason)
    if raw:
        # Listed: he played if any row of his says so (a duplicate row must not hide a real game).
        if any((a.status or "").lower() not in ("dnp", "inactive") and minutes_positive(a.minutes) for a in raw):
            return verdict(GameVerdict.ANALYTICS_GAP)
        return verdict(GameVerdict.PLAYER_DNP, reason)
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
        a
        for a in _bounded(ev.appearances.get(failure.entity_id, ()), failure.item_date)
        if a.source == "raw" and a.game_date <= failure.item_date
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


def _games_by_id(failure: FailureToClassify, ev: Evidence, ids: Sequence[str]) -> list[ScheduledGame | None]:
    """The schedule's game for each id (schedule or gamebook form), if it is dated in the item's history."""
    first = failure.item_date - dt.timedelta(days=HISTORY_DAYS)
    found = [ev.game_by_id.get(i) for i in ids]
    return [g if g is not None and first <= g.game_date <= failure.item_date else None for g in found]


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
#: A game of his team before his first appearance of the season, absent from its box score: a signing,
#: a rookie or a return who was not with the team yet (a missing game would say NOT_IN_BOXSCORE).
NOT_WITH_TEAM_YET = "NOT_WITH_TEAM_YET"


#: How far before he joins a team its games can fall in the window of an item dated after he joined (the longest
#: windows the processors use: 14 days, or 10 team games, about three weeks).
ARRIVAL_REACH_DAYS = 30


def _arriving(season_apps: Sequence[Appearance], team: str, day: dt.date) -> bool:
    """Whether a game of ``team`` on ``day`` comes shortly before he joins (or rejoins) it: his first appearance
    for ``team`` after ``day`` starts a spell (his appearance before it was for another team) within
    :data:`ARRIVAL_REACH_DAYS` (a trade, a signing after a release, a return). An item dated in that spell takes
    ``team`` for its whole window, so it may count this game."""
    spell = next((i for i, a in enumerate(season_apps) if a.game_date > day and a.team == team), None)
    if not spell:  # no later spell with the team, or his first of the season (the rule for a first team applies)
        return False
    start, before = season_apps[spell], season_apps[spell - 1]
    return before.team != team and (start.game_date - day).days <= ARRIVAL_REACH_DAYS


def player_timeline(
    lookup: str, ev: Evidence, start: dt.date, end: dt.date
) -> list[tuple[ScheduledGame, str, str, str | None]]:
    """Every final game of his team(s) with ``start <= date <= end``: (game, team, outcome, reason).

    His team on each game date follows :func:`team_on_date` within the season (the old team before a
    trade, the new one after; the team he first appears with for the games before he arrived). A team he
    joins later in the season also shows its games before his first appearance for it: an item dated after
    his arrival takes that team for its whole window (:func:`team_as_of`), so those are the games it counts,
    and absent from their box scores they read NOT_WITH_TEAM_YET (the strip and the item panel alike).
    The outcome is PLAYED, NOT_WITH_TEAM_YET, or the verdict a missing game would get (PLAYER_DNP,
    NOT_IN_BOXSCORE, RAW_DATA_GAP, ANALYTICS_GAP, NAME_UNRESOLVED), by the same rules as the classifier.
    """
    apps = [a for a in ev.appearances.get(lookup, ()) if a.game_date <= end]
    on_date: dict[dt.date, list[Appearance]] = defaultdict(list)
    for a in apps:
        on_date[a.game_date].append(a)
    by_season: dict[int | None, list[Appearance]] = defaultdict(list)
    for a in apps:
        by_season[ev.season_of(a.game_date)].append(a)
    played = {a.game_date for a in apps if a.source == "analytics" and a.is_dnp is not True}
    out: list[tuple[ScheduledGame, str, str, str | None]] = []
    for team in sorted({a.team for a in apps}):
        for g in ev.team_games(team, start, end + dt.timedelta(days=1)):
            season_apps = by_season.get(ev.season_of(g.game_date), [])
            arriving = _arriving(season_apps, team, g.game_date)
            if team_on_date(season_apps, g.game_date) != team and not arriving:
                continue
            if g.game_date in played and not arriving:  # arriving: a game he played that day was another team's
                out.append((g, team, PLAYED, None))
                continue
            m = _player_game(lookup, g, team, on_date.get(g.game_date, []), ev)
            outcome = m.verdict.value
            if m.verdict is GameVerdict.NOT_IN_BOXSCORE and (arriving or g.game_date < season_apps[0].game_date):
                outcome = NOT_WITH_TEAM_YET
            out.append((g, team, outcome, m.dnp_reason))
    return sorted(out, key=lambda row: row[0].game_date)
