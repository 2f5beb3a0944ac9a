"""Deterministic, realistic demo data: one NBA season (2021-22) of evidence and failures, at any scale.

The season is simulated, then the failures are derived from it the way the pipeline's processors
would have recorded them, so that every failure is explainable from the evidence tables:

* a schedule for the 30 teams (preseason, regular season, All-Star break, COVID postponements);
* rosters with roles, a few trades, injury spells (some for months), the December 2021 health and
  safety protocols wave, a suspension, personal absences;
* gamebook rows with active / dnp / inactive players and a real-world mix of reasons (calibrated on
  the 2019-20 box scores: about 83% of listed players play, "DNP - Coach's Decision" is the commonest
  reason by far), inactive players omitted by some games' source, a few unresolved names;
* injected raw-data gaps (whole games, and one team's side; two of them backfilled after the
  failures were recorded, so those failures are stale) and analytics gaps;
* failure rows in all three tables from the pipeline's processors, early season dominated by
  INSUFFICIENT_DATA, phase-4 reruns with new run ids, phase-3 duplicates, NULL statuses, odd values.

For benchmarks, :func:`add_scale_rows` adds any number of further failure rows, generated inside the
engine by one parameterised statement per chunk.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from lib import operations
from lib.errors import BadInput
from lib.model import PHASE3_PROCESSORS, PHASE4_PROCESSORS, Actor
from lib.names import player_lookup
from lib.store.base import Store

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    return None


SEASON_YEAR = 2021
PRESEASON = (dt.date(2021, 10, 3), dt.date(2021, 10, 15))
REGULAR = (dt.date(2021, 10, 19), dt.date(2022, 4, 10))
NO_GAMES = {dt.date(2021, 11, 25), dt.date(2021, 12, 24)} | {
    dt.date(2022, 2, 18) + dt.timedelta(days=i) for i in range(6)
}
COVID_WAVE = (dt.date(2021, 12, 14), dt.date(2022, 1, 9))
NAIVE_CLASSIFIER_FROM = dt.date(2022, 1, 15)

TEAMS = (
    "ATL BOS BKN CHA CHI CLE DAL DEN DET GSW HOU IND LAC LAL MEM "
    "MIA MIL MIN NOP NYK OKC ORL PHI PHX POR SAC SAS TOR UTA WAS"
).split()

_FIRST = (
    "James Anthony Kevin Chris Jaylen Devin Tyrese Jalen Marcus Kyle Darius Cameron Trae Luka Nikola "
    "Giannis Jayson Bam Zion Ja Donovan Julius Karl-Anthony Desmond Mikal Terry Tobias Brook Bojan "
    "Dennis Jonas Kristaps Bogdan Goran Deni Franz Moritz Théo Killian Evan Jusuf Aleksej Davis Josh "
    "Malik Keldon Isaiah Kelly Naz Precious Day'Ron Aaron Gary Michael Wendell Kira Otto Dāvis Álex"
).split()
_LAST = (
    "Johnson Williams Brown Jones Miller Davis Wilson Anderson Thomas Taylor Moore Jackson Martin Lee "
    "Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Green Baker Adams "
    "Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Torres Parker Collins Edwards "
    "Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Bailey Reed Kelly Howard Jokić Dončić "
    "Valančiūnas Schröder Porziņģis Bogdanović Šarić Nurkić Hernangómez Antetokounmpo Vučević Sabonis "
    "Bertāns Ntilikina Hayes Okoro Kispert Achiuwa Šamanić Pokuševski Ayton Bagley Trent Porter Hardaway"
).split()
_SUFFIX_CHANCE = 0.05

ROLES = ("starter",) * 5 + ("rotation",) * 4 + ("bench",) * 3 + ("deep",) * 3 + ("twoway",) * 2
_PLAY_CHANCE = {"starter": 0.97, "rotation": 0.94, "bench": 0.78, "deep": 0.45, "twoway": 0.12}
_MINUTES = {"starter": (27, 38), "rotation": (16, 28), "bench": (7, 18), "deep": (1, 9), "twoway": (1, 6)}
_INJURY_BODY = (
    "Left Ankle; Sprain",
    "Right Ankle; Sprain",
    "Left Knee; Soreness",
    "Right Hamstring; Strain",
    "Lower Back; Tightness",
    "Right Foot; Plantar Fasciitis",
    "Left Hand; Fracture",
    "Illness",
    "Right Knee; Torn ACL",
    "Left Calf; Strain",
    "Concussion Protocol",
    "Right Shoulder; Soreness",
)


@dataclass
class Player:
    lookup: str
    name: str
    role: str
    stints: list[tuple[dt.date, str]]  # (from date, team), sorted

    def team_on(self, day: dt.date) -> str:
        team = self.stints[0][1]
        for start, t in self.stints:
            if start <= day:
                team = t
        return team


@dataclass
class Absence:
    start: dt.date
    end: dt.date
    status: str  # dnp or inactive
    reason: str
    listed_after_games: int = 10_000  # long absences stop being listed by the source after this many games


@dataclass
class Game:
    schedule_id: str
    date: dt.date
    home: str
    away: str
    status: int
    regular: bool

    @property
    def gamebook_id(self) -> str:
        return f"{self.date:%Y%m%d}_{self.away}_{self.home}"


@dataclass
class Demo:
    schedule: pd.DataFrame
    gamebook: pd.DataFrame
    analytics: pd.DataFrame
    failures: dict[str, pd.DataFrame]
    players: list[Player]
    injected: dict[str, list[str]] = field(default_factory=dict)
    #: The day the demo lives in (its last day is the day before), or None for the season's real dates.
    as_of: dt.date | None = None

    @property
    def failure_rows(self) -> int:
        return sum(len(f) for f in self.failures.values())


# ---------------------------------------------------------------------------------------------
# The season
# ---------------------------------------------------------------------------------------------


def _days(start: dt.date, end: dt.date) -> Iterable[dt.date]:
    for i in range((end - start).days + 1):
        yield start + dt.timedelta(days=i)


def build_schedule(rng: random.Random) -> list[Game]:
    games: list[Game] = []
    played: Counter[str] = Counter()
    seq = 0
    for day in _days(*PRESEASON):
        teams = rng.sample(TEAMS, 2 * rng.randint(2, 6))
        for i in range(0, len(teams), 2):
            seq += 1
            games.append(Game(f"00121{seq:05d}", day, teams[i], teams[i + 1], 3, False))
    seq = 0
    days = [d for d in _days(*REGULAR) if d not in NO_GAMES]
    target_total = 1230
    for n, day in enumerate(days):
        remaining_days = len(days) - n
        remaining = target_total - seq
        mean = remaining / remaining_days
        k = max(1, min(15, round(rng.gauss(mean, 2.6))))
        if day.weekday() == 4 and rng.random() < 0.5:
            k = min(15, k + 2)
        k = min(k, remaining) if remaining > 0 else 0
        order = sorted(TEAMS, key=lambda t: played[t] + rng.random() * 2.5)
        chosen = order[: 2 * k]
        rng.shuffle(chosen)
        for i in range(0, len(chosen), 2):
            seq += 1
            home, away = chosen[i], chosen[i + 1]
            played[home] += 1
            played[away] += 1
            status = 3
            # COVID postponements: scheduled, never played (not expected games).
            if (
                COVID_WAVE[0] + dt.timedelta(days=5) <= day <= COVID_WAVE[1] - dt.timedelta(days=5)
                and rng.random() < 0.035
            ):
                status = 1
            games.append(Game(f"00221{seq:05d}", day, home, away, status, True))
    return games


def build_players(rng: random.Random) -> list[Player]:
    players: list[Player] = []
    used: set[str] = set()
    for team in TEAMS:
        for role in ROLES:
            while True:
                name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
                if rng.random() < _SUFFIX_CHANCE:
                    name += rng.choice((" Jr.", " Sr.", " III"))
                lookup = player_lookup(name)
                if lookup not in used:
                    used.add(lookup)
                    break
            players.append(Player(lookup, name, role, [(PRESEASON[0], team)]))
    # Trades: one in November, one in January, three at the deadline (Feb 10).
    for when, count in ((dt.date(2021, 11, 24), 1), (dt.date(2022, 1, 15), 1), (dt.date(2022, 2, 10), 3)):
        for _ in range(count):
            a, b = rng.sample([p for p in players if p.role in ("rotation", "bench") and len(p.stints) == 1], 2)
            ta, tb = a.stints[-1][1], b.stints[-1][1]
            if ta == tb:
                continue
            a.stints.append((when, tb))
            b.stints.append((when, ta))
    return players


def build_absences(rng: random.Random, players: list[Player]) -> dict[str, list[Absence]]:
    absences: dict[str, list[Absence]] = defaultdict(list)
    season_days = (REGULAR[1] - REGULAR[0]).days
    for p in players:
        for _ in range(_poisson(rng, 0.9)):
            start = REGULAR[0] + dt.timedelta(days=rng.randrange(season_days))
            length = max(1, int(rng.expovariate(1 / 6)))
            body = rng.choice(_INJURY_BODY)
            if rng.random() < 0.45:
                absences[p.lookup].append(
                    Absence(start, start + dt.timedelta(days=length), "dnp", "DND - Injury/Illness")
                )
            else:
                absences[p.lookup].append(
                    Absence(start, start + dt.timedelta(days=length), "inactive", f"Injury/Illness - {body}")
                )
        if rng.random() < 0.04:
            start = REGULAR[0] + dt.timedelta(days=rng.randrange(10, 60))
            absences[p.lookup].append(
                Absence(
                    start,
                    start + dt.timedelta(days=rng.randrange(60, 120)),
                    "inactive",
                    "Injury/Illness - Right Knee; Torn ACL",
                    listed_after_games=3,
                )
            )
        if COVID_WAVE and rng.random() < 0.2:
            span = (COVID_WAVE[1] - COVID_WAVE[0]).days
            start = COVID_WAVE[0] + dt.timedelta(days=int(rng.triangular(0, span, span * 0.55)))
            status = "inactive" if rng.random() < 0.7 else "dnp"
            reason = "Health and Safety Protocols" if status == "inactive" else "DNP - Health and Safety Protocols"
            absences[p.lookup].append(Absence(start, start + dt.timedelta(days=rng.randint(5, 11)), status, reason))
        if p.role in ("starter", "rotation") and rng.random() < 0.03:
            start = REGULAR[0] + dt.timedelta(days=rng.randrange(season_days))
            absences[p.lookup].append(
                Absence(start, start + dt.timedelta(days=rng.randint(2, 5)), "dnp", "NWT - Not With Team")
            )
    suspended = rng.choice([p for p in players if p.role == "starter"])
    start = dt.date(2022, 1, 20)
    absences[suspended.lookup].append(Absence(start, start + dt.timedelta(days=9), "dnp", "NWT - League Suspension"))
    return absences


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, pow(2.718281828, -lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def _minutes(rng: random.Random, role: str) -> str:
    lo, hi = _MINUTES[role]
    seconds = rng.randint(lo * 60, hi * 60)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def build(seed: int = 7) -> Demo:
    rng = random.Random(seed)
    games = build_schedule(rng)
    players = build_players(rng)
    absences = build_absences(rng, players)

    final_games = [g for g in games if g.status == 3]
    regular_final = [g for g in final_games if g.regular]
    mid = [g for g in regular_final if dt.date(2021, 11, 8) <= g.date <= dt.date(2022, 3, 25)]
    gap_games = rng.sample(mid, 6)
    backfilled = set(g.schedule_id for g in gap_games[:2])
    side_gaps = {(g.schedule_id, rng.choice((g.home, g.away))) for g in rng.sample(mid, 3)}
    analytics_gap_games = {g.schedule_id for g in rng.sample(mid, 4)}
    omit_inactive = {g.schedule_id for g in final_games if rng.random() < 0.2}

    by_team: dict[str, list[Player]] = defaultdict(list)
    for p in players:
        for _, team in p.stints:
            if p not in by_team[team]:
                by_team[team].append(p)

    gamebook: list[dict[str, object]] = []
    pipeline_missing_raw: set[str] = set()  # gamebook rows the pipeline did not have at failure time
    games_listed: Counter[str] = Counter()
    for g in final_games:
        for team in (g.away, g.home):
            side_missing = g in gap_games or (g.schedule_id, team) in side_gaps
            for p in by_team[team]:
                if p.team_on(g.date) != team:
                    continue
                status, reason, minutes = _status(rng, p, g.date, absences.get(p.lookup, ()), games_listed)
                if status is None:
                    continue
                if status == "inactive" and g.schedule_id in omit_inactive:
                    continue
                resolved = "resolved"
                lookup, name = p.lookup, p.name
                if status == "active" and rng.random() < 0.003:
                    last = p.name.replace(" Jr.", "").replace(" Sr.", "").replace(" III", "").split()[-1]
                    lookup, name, resolved = player_lookup(last), last, rng.choice(("unresolved", "not_found"))
                row = {
                    "game_id": g.gamebook_id,
                    "game_date": g.date,
                    "team_abbr": team,
                    "player_lookup": lookup,
                    "player_name": name,
                    "player_status": status,
                    "dnp_reason": reason,
                    "minutes": minutes,
                    "name_resolution_status": resolved,
                }
                if side_missing:
                    if g.schedule_id not in backfilled:
                        continue  # never arrived
                    pipeline_missing_raw.add(f"{g.gamebook_id}|{team}|{lookup}")
                gamebook.append(row)

    analytics: list[dict[str, object]] = []
    pipeline_missing_analytics: set[tuple[str, dt.date]] = set()
    single_drops = set()
    active_rows = [r for r in gamebook if r["player_status"] == "active" and r["name_resolution_status"] == "resolved"]
    for r in rng.sample(active_rows, 25):
        single_drops.add((r["game_id"], r["player_lookup"]))
    gamebook_to_schedule = {g.gamebook_id: g for g in final_games}
    for r in gamebook:
        if r["name_resolution_status"] != "resolved" or r["player_status"] == "inactive":
            continue
        g = gamebook_to_schedule[str(r["game_id"])]
        if g.schedule_id in analytics_gap_games or (r["game_id"], r["player_lookup"]) in single_drops:
            continue
        is_dnp = r["player_status"] != "active"
        if is_dnp and rng.random() < 0.4:
            continue  # phase 3 writes only some did-not-play rows
        row = {
            "game_id": r["game_id"],
            "game_date": r["game_date"],
            "team_abbr": r["team_abbr"],
            "player_lookup": r["player_lookup"],
            "minutes_played": 0.0 if is_dnp else _minutes_float(str(r["minutes"])),
            "is_dnp": is_dnp,
        }
        if f"{r['game_id']}|{r['team_abbr']}|{r['player_lookup']}" in pipeline_missing_raw:
            pipeline_missing_analytics.add((str(r["player_lookup"]), g.date))
        analytics.append(row)

    schedule = pd.DataFrame(
        [
            {
                "game_id": g.schedule_id,
                "game_date": g.date,
                "game_status": g.status,
                "home_team_tricode": g.home,
                "away_team_tricode": g.away,
                "season_year": SEASON_YEAR,
                "is_regular_season": g.regular,
                "is_playoffs": False,
            }
            for g in games
        ]
    )
    gamebook_df = pd.DataFrame(gamebook)
    analytics_df = pd.DataFrame(analytics)
    injected = {
        "raw_gap_games": [g.schedule_id for g in gap_games if g.schedule_id not in backfilled],
        "backfilled_games": sorted(backfilled),
        "side_gaps": [f"{gid}:{team}" for gid, team in sorted(side_gaps)],
        "analytics_gap_games": sorted(analytics_gap_games),
    }
    failures = _Failures(
        rng,
        games,
        players,
        gamebook_df,
        analytics_df,
        pipeline_missing_analytics,
        gap_games,
        side_gaps,
        analytics_gap_games,
        single_drops,
    ).build()
    return Demo(schedule, gamebook_df, analytics_df, failures, players, injected)


def _minutes_float(text: str) -> float:
    mm, ss = text.split(":")
    return round(int(mm) + int(ss) / 60, 2)


def _status(
    rng: random.Random, p: Player, day: dt.date, absences: Iterable[Absence], listed: Counter[str]
) -> tuple[str | None, str | None, str | None]:
    for a in absences:
        if a.start <= day <= a.end:
            key = f"{p.lookup}|{a.start}"
            listed[key] += 1
            if listed[key] > a.listed_after_games:
                return None, None, None  # out for months: the source stops listing him
            return a.status, a.reason, (None if rng.random() < 0.85 else "00:00")
    if p.role == "twoway" and rng.random() < 0.65:
        return "inactive", "G League - Two-Way", None
    if p.role == "starter" and rng.random() < 0.02:
        return "dnp", "DNP - Rest", None
    if rng.random() < _PLAY_CHANCE[p.role]:
        return "active", None, _minutes(rng, p.role)
    return "dnp", "DNP - Coach's Decision", (None if rng.random() < 0.9 else "00:00")


# ---------------------------------------------------------------------------------------------
# The failures the pipeline recorded for that season
# ---------------------------------------------------------------------------------------------

_ABBR = {
    "TeamDefenseZoneAnalysisProcessor": "tdza",
    "PlayerShotZoneAnalysisProcessor": "psza",
    "PlayerCompositeFactorsProcessor": "pcf",
    "PlayerDailyCacheProcessor": "pdc",
    "MLFeatureStoreProcessor": "mlfs",
    "PlayerGameSummaryProcessor": "pgs",
    "TeamOffenseGameSummaryProcessor": "togs",
    "TeamDefenseGameSummaryProcessor": "tdgs",
    "UpcomingPlayerGameContextProcessor": "upgc",
    "UpcomingTeamGameContextProcessor": "utgc",
    "PredictionCoordinator": "coord",
    "PlayerPropPredictionWorker": "worker",
}
_MINUTE_OFFSET = {name: 10 * i for i, name in enumerate(_ABBR)}
_LONG_TRACE = (
    "google.api_core.exceptions.BadRequest: 400 Resources exceeded during query execution: "
    "The query could not be executed in the allotted memory. Peak usage: 112% of limit. "
    "Top memory consumer(s): sort operations used for analytic OVER() clauses: 98%. Traceback "
    '(most recent call last): File "/app/data_processors/precompute/base.py", line 412, in run '
)


class _Failures:
    def __init__(
        self,
        rng: random.Random,
        games: list[Game],
        players: list[Player],
        gamebook: pd.DataFrame,
        analytics: pd.DataFrame,
        pipeline_missing_analytics: set[tuple[str, dt.date]],
        gap_games: list[Game],
        side_gaps: set[tuple[str, str]],
        analytics_gap_games: set[str],
        single_drops: set[tuple[object, object]],
    ) -> None:
        self.rng = rng
        self.games = games
        self.players = players
        self.gap_games = gap_games
        self.side_gaps = side_gaps
        self.analytics_gap_games = analytics_gap_games
        self.rows: dict[str, list[dict[str, object]]] = defaultdict(list)
        self.runs: dict[tuple[str, dt.date], tuple[str, dt.datetime]] = {}

        final = [g for g in games if g.status == 3 and g.regular]
        self.team_games: dict[str, list[Game]] = defaultdict(list)
        for g in final:
            self.team_games[g.home].append(g)
            self.team_games[g.away].append(g)
        self.days = sorted({g.date for g in games if g.regular})
        self.playing: dict[dt.date, set[str]] = defaultdict(set)
        for g in games:
            if g.regular:
                self.playing[g.date].update((g.home, g.away))
        played = analytics[~analytics["is_dnp"].astype(bool)]
        self.played_dates: dict[str, list[dt.date]] = defaultdict(list)
        for lookup, day in zip(played["player_lookup"], played["game_date"], strict=True):
            if (lookup, day) not in pipeline_missing_analytics:
                self.played_dates[str(lookup)].append(day)
        for dates in self.played_dates.values():
            dates.sort()
        self.raw_listed: set[tuple[str, dt.date]] = set(
            zip(gamebook["player_lookup"], gamebook["game_date"], strict=True)
        )
        self.backfilled_dates = {(g.home, g.date) for g in gap_games[:2]} | {(g.away, g.date) for g in gap_games[:2]}

    # -- helpers ----------------------------------------------------------------------------------
    def _run(self, processor: str, day: dt.date) -> tuple[str, dt.datetime]:
        key = (processor, day)
        if key not in self.runs:
            created = dt.datetime.combine(day, dt.time(7, 0), tzinfo=dt.UTC) + dt.timedelta(
                minutes=_MINUTE_OFFSET[processor], seconds=self.rng.randrange(600)
            )
            run = f"{_ABBR[processor]}-{day:%Y%m%d}-{self.rng.getrandbits(24):06x}"
            if self.rng.random() < 0.04:  # a rerun replaced the first run's rows (phase 4 deletes, reinserts)
                created += dt.timedelta(hours=self.rng.randint(2, 6))
                run = f"{_ABBR[processor]}-{day:%Y%m%d}-rerun-{self.rng.getrandbits(24):06x}"
            self.runs[key] = (run, created)
        return self.runs[key]

    def _status(self) -> str | None:
        return None if self.rng.random() < 0.06 else "UNRESOLVED"

    def _p4(
        self, processor: str, day: dt.date, entity: str, category: str, reason: str, can_retry: bool, **extra: object
    ) -> None:
        run, created = self._run(processor, day)
        self.rows["precompute_failures"].append(
            {
                "processor_name": processor,
                "run_id": run,
                "analysis_date": day,
                "entity_id": entity,
                "failure_category": category,
                "failure_reason": reason[:1000],
                "can_retry": can_retry,
                "failure_type": None,
                "is_correctable": None,
                "expected_game_count": None,
                "actual_game_count": None,
                "missing_game_dates": None,
                "raw_data_checked": None,
                "resolution_status": self._status(),
                "resolved_at": None,
                "created_at": created,
                **extra,
            }
        )

    def _p3(
        self,
        processor: str,
        day: dt.date,
        entity: str,
        entity_type: str,
        category: str,
        reason: str,
        can_retry: bool,
        expected: int | None,
        actual: int | None,
        missing_ids: list[str] | None,
    ) -> None:
        # Phase 3 appends: each rerun adds another copy with a new run id.
        for attempt in range(self.rng.choice((1, 1, 2, 3))):
            run, created = self._run(processor, day + dt.timedelta(days=attempt))
            copies = 2 if self.rng.random() < 0.05 else 1  # the same run written twice
            for _ in range(copies):
                self.rows["analytics_failures"].append(
                    {
                        "processor_name": processor,
                        "run_id": run,
                        "analysis_date": day,
                        "entity_id": entity,
                        "entity_type": entity_type,
                        "failure_category": category,
                        "failure_reason": reason,
                        "failure_type": None,
                        "is_correctable": None,
                        "expected_record_count": expected,
                        "actual_record_count": actual,
                        "missing_game_ids": json.dumps(missing_ids) if missing_ids is not None else None,
                        "can_retry": can_retry,
                        "resolution_status": self._status(),
                        "resolved_at": None,
                        "created_at": created + dt.timedelta(hours=attempt * 5),
                    }
                )

    def _p5(
        self,
        processor: str,
        day: dt.date,
        entity: str,
        category: str,
        reason: str,
        can_retry: bool,
        upstream: list[str] | None,
        cache_age: float | None,
    ) -> None:
        run, created = self._run(processor, day)
        self.rows["prediction_failures"].append(
            {
                "processor_name": processor,
                "run_id": run,
                "prediction_date": day,
                "entity_id": entity,
                "failure_category": category,
                "failure_reason": reason,
                "failure_type": None,
                "is_correctable": None,
                "missing_upstream_tables": json.dumps(upstream) if upstream is not None else None,
                "cache_age_hours": cache_age,
                "can_retry": can_retry,
                "resolution_status": self._status(),
                "resolved_at": None,
                "created_at": created,
            }
        )

    # -- the processors ---------------------------------------------------------------------------
    def build(self) -> dict[str, pd.DataFrame]:
        team_dates = {team: [g.date for g in games] for team, games in self.team_games.items()}
        season_start = self.days[0]
        for day in self.days:
            teams_today = self.playing[day]
            if not teams_today:
                continue
            for team in sorted(teams_today):
                team_played = bisect.bisect_left([g.date for g in self.team_games[team]], day)
                if team_played < 15:
                    self._p4(
                        "TeamDefenseZoneAnalysisProcessor",
                        day,
                        team,
                        "INSUFFICIENT_DATA",
                        f"Team has {team_played} games; zone analysis needs 15",
                        True,
                    )
            for p in self.players:
                if p.team_on(day) not in teams_today:
                    continue
                # His team as of the day, as the pipeline's check takes it: that of his latest game before it.
                played = self.played_dates.get(p.lookup, [])
                before = bisect.bisect_left(played, day)
                team = p.team_on(played[before - 1] if before else day)
                self._player_day(p, day, self.team_games[team], team_dates[team], season_start)
        self._date_level_and_odd()
        self._phase3()
        frames = {name: pd.DataFrame(rows) for name, rows in self.rows.items()}
        for frame in frames.values():
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        return frames

    def _player_day(
        self, p: Player, day: dt.date, games: list[Game], dates: list[dt.date], season_start: dt.date
    ) -> None:
        """The pipeline's completeness check: his team as of the day (that of his latest game before it), that
        team's games in the last 14 days."""
        played = self.played_dates.get(p.lookup, [])
        season_played = bisect.bisect_left(played, day)
        lo = bisect.bisect_left(dates, day - dt.timedelta(days=14))
        hi = bisect.bisect_left(dates, day)
        window = games[lo:hi]
        played_set = set(played[bisect.bisect_left(played, day - dt.timedelta(days=14)) : season_played])
        missing = [g for g in window if g.date not in played_set]
        week = (day - season_start).days // 7
        if season_played < 10:
            self._p4(
                "PlayerShotZoneAnalysisProcessor",
                day,
                p.lookup,
                "INSUFFICIENT_DATA",
                f"Player has {season_played} games this season; shot zone analysis needs 10",
                True,
            )
        if season_played < 5:
            if self.rng.random() < 0.8:
                self._p4(
                    "PlayerCompositeFactorsProcessor",
                    day,
                    p.lookup,
                    "INSUFFICIENT_DATA",
                    f"Only {season_played} games in history; composite factors need 5",
                    True,
                )
            self._p4(
                "PlayerDailyCacheProcessor",
                day,
                p.lookup,
                "INSUFFICIENT_DATA" if week > 0 or self.rng.random() < 0.9 else "EXPECTED_INCOMPLETE",
                f"Only {season_played} games in history; L5 window needs 5",
                True,
            )
            if week <= 1 and self.rng.random() < 0.5:
                self._p4(
                    "MLFeatureStoreProcessor",
                    day,
                    p.lookup,
                    "MINIMUM_THRESHOLD_NOT_MET",
                    f"Feature completeness {40 + season_played * 10}% below 80% threshold",
                    True,
                )
            return
        if not missing:
            return
        last_missing = bool(window) and window[-1] in missing
        if len(missing) < 2 and not last_missing:
            return
        extra: dict[str, object] = {}
        if day >= NAIVE_CLASSIFIER_FROM:
            extra = self._naive_classification(p, window, missing)
        window_name = self.rng.choice(("L14D", "L10", "L7D"))
        self._p4(
            "PlayerDailyCacheProcessor",
            day,
            p.lookup,
            "INCOMPLETE_DATA",
            f"{window_name} window incomplete: {len(window) - len(missing)} of {len(window)} team games "
            f"found in player_game_summary",
            True,
            **extra,
        )
        roll = self.rng.random()
        if roll < 0.4:
            self._p4(
                "MLFeatureStoreProcessor",
                day,
                p.lookup,
                "INCOMPLETE_UPSTREAM",
                "Upstream player_daily_cache incomplete for this player",
                True,
            )
            if self.rng.random() < 0.35:
                early = day < dt.date(2021, 11, 15)
                category = (
                    "MISSING_UPSTREAM_IN_BACKFILL"
                    if early
                    else self.rng.choice(
                        ("MISSING_DEPENDENCY", "MISSING_DEPENDENCY", "STALE_DATA", "FEATURE_VALIDATION_ERROR")
                    )
                )
                self._p5(
                    "PlayerPropPredictionWorker",
                    day,
                    p.lookup,
                    category,
                    f"{category.replace('_', ' ').lower()}: ml_feature_store_v2 row missing or stale",
                    category != "FEATURE_VALIDATION_ERROR",
                    ["nba_precompute.ml_feature_store_v2"] if category != "STALE_DATA" else [],
                    round(self.rng.uniform(26, 90), 1) if category == "STALE_DATA" else None,
                )
        elif roll < 0.55:
            self._p4(
                "PlayerCompositeFactorsProcessor",
                day,
                p.lookup,
                "UPSTREAM_INCOMPLETE",
                "player_daily_cache missing for the analysis date",
                True,
            )
        if self.rng.random() < 0.01:
            self._p4(
                "PlayerCompositeFactorsProcessor",
                day,
                p.lookup,
                "calculation_error",
                "ZeroDivisionError: float division by zero in usage_rate_adjustment",
                False,
            )

    def _naive_classification(self, p: Player, window: list[Game], missing: list[Game]) -> dict[str, object]:
        """What the pipeline's own classifier wrote: absent from raw -> DNP, present in raw -> complete."""
        in_raw = [g for g in missing if (p.lookup, g.date) in self.raw_listed]
        failure_type = "COMPLETE" if len(in_raw) == len(missing) else "PLAYER_DNP" if not in_raw else "MIXED"
        return {
            "failure_type": failure_type,
            "is_correctable": failure_type == "COMPLETE",
            "expected_game_count": len(window),
            "actual_game_count": len(window) - len(missing),
            "missing_game_dates": json.dumps([g.date.isoformat() for g in missing]),
            "raw_data_checked": True,
        }

    def _date_level_and_odd(self) -> None:
        rng = self.rng
        for g in self.gap_games:
            day = g.date + dt.timedelta(days=1)
            self._p4(
                "MLFeatureStoreProcessor",
                day,
                "DATE_LEVEL",
                "MISSING_DEPENDENCY",
                f"nba_analytics.player_game_summary incomplete for {g.date}: game {g.schedule_id} has no rows",
                True,
            )
        for day in rng.sample(self.days[:12], 3):
            self._p4(
                "PlayerCompositeFactorsProcessor",
                day,
                "DATE_LEVEL",
                "MISSING_DEPENDENCIES",
                "Dependencies not ready: team_defense_zone_analysis",
                True,
            )
        for day in rng.sample(self.days, 3):
            self._p4(
                "PlayerCompositeFactorsProcessor",
                day,
                "DATE_LEVEL",
                "CIRCUIT_BREAKER_ACTIVE",
                "Circuit breaker open after 5 consecutive failures; skipping date",
                True,
            )
            self._p5(
                "PredictionCoordinator",
                day,
                "DATE_LEVEL",
                "CIRCUIT_BREAKER_ACTIVE",
                "Circuit breaker active for upstream ml_feature_store_v2",
                True,
                ["nba_precompute.ml_feature_store_v2"],
                None,
            )
        for day in rng.sample(self.days, 2):
            self._p4("PlayerDailyCacheProcessor", day, "DATE_LEVEL", "BIGQUERY_ERROR", (_LONG_TRACE * 8)[:1000], True)
        for day in rng.sample(self.days, 3):
            self._p4(
                "MLFeatureStoreProcessor",
                day,
                rng.choice(self.players).lookup,
                "VALIDATION_ERROR",
                "Feature 'pts_avg_last_5' out of range: 412.0",
                False,
            )
        day = rng.choice(self.days)
        self._p4(
            "PlayerDailyCacheProcessor",
            day,
            rng.choice(self.players).lookup,
            "PROCESSING_ERROR",
            "<b>KeyError</b>: 'minutes' <script>alert('x')</script> '; DROP TABLE precompute_failures; --",
            True,
        )
        day = rng.choice(self.days[60:])
        self._p4(
            "PlayerDailyCacheProcessor",
            day,
            rng.choice(self.players).lookup,
            "SCHEMA_DRIFT",
            "Column usage_rate missing from upstream (new category, not seen before)",
            False,
        )
        for day in rng.sample(self.days, 4):
            self._p4(
                "PlayerShotZoneAnalysisProcessor",
                day,
                rng.choice(self.players).lookup,
                "DATA_ERROR",
                "Shot zone totals do not add up: 14 attempts vs 13 zoned",
                True,
            )

    def _phase3(self) -> None:
        rng = self.rng
        for g in self.gap_games:
            self._p3(
                "PlayerGameSummaryProcessor",
                g.date,
                g.schedule_id,
                "GAME",
                "MISSING_DATA",
                f"No rows in nba_raw.nbac_gamebook_player_stats for {g.gamebook_id}",
                True,
                2,
                0,
                [g.schedule_id],
            )
            for team in (g.home, g.away):
                self._p3(
                    "TeamOffenseGameSummaryProcessor",
                    g.date,
                    team,
                    "TEAM",
                    "INCOMPLETE_UPSTREAM",
                    f"Raw box score missing for {g.gamebook_id}",
                    True,
                    1,
                    0,
                    [g.schedule_id],
                )
        for gid, team in sorted(self.side_gaps):
            g = next(x for x in self.games if x.schedule_id == gid)
            self._p3(
                "PlayerGameSummaryProcessor",
                g.date,
                gid,
                "GAME",
                "INCOMPLETE_DATA",
                f"Only one team's players present in {g.gamebook_id} ({team} missing)",
                True,
                2,
                1,
                [gid],
            )
            self._p3(
                "TeamDefenseGameSummaryProcessor",
                g.date,
                team,
                "TEAM",
                "MISSING_DATA",
                f"No {team} rows in raw box score {g.gamebook_id}",
                True,
                1,
                0,
                [gid],
            )
        for gid in sorted(self.analytics_gap_games):
            g = next(x for x in self.games if x.schedule_id == gid)
            self._p3(
                "PlayerGameSummaryProcessor",
                g.date,
                gid,
                "GAME",
                "PROCESSING_ERROR",
                "BigQuery job failed: 503 Service Unavailable while merging player_game_summary",
                True,
                None,
                None,
                [gid],
            )
        for day in rng.sample(self.days, 12):
            team = rng.choice(sorted(self.playing[day]))
            self._p3(
                "UpcomingTeamGameContextProcessor",
                day,
                team,
                "TEAM",
                "STALE_DATA",
                "Odds snapshot older than 12 hours",
                True,
                None,
                None,
                None,
            )
        for day in rng.sample(self.days, 30):
            p = rng.choice(self.players)
            self._p3(
                "UpcomingPlayerGameContextProcessor",
                day,
                p.lookup,
                "PLAYER",
                "UPSTREAM_INCOMPLETE",
                "Injury report not yet published for this player",
                True,
                None,
                None,
                None,
            )


# ---------------------------------------------------------------------------------------------
# A season that lives in the present
# ---------------------------------------------------------------------------------------------

#: Dates inside text (reasons, run ids, box-score game ids, JSON lists of dates) are moved with the rows when
#: they fall in the season or a month around it; anything else in the text is left as it is.
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_COMPACT_DATE = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)")
_TEXT_DATES = (PRESEASON[0] - dt.timedelta(days=31), REGULAR[1] + dt.timedelta(days=31))


def _moved(match: re.Match[str], delta: dt.timedelta, form: str) -> str:
    try:
        day = dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return match.group(0)
    if not _TEXT_DATES[0] <= day <= _TEXT_DATES[1]:
        return match.group(0)
    return (day + delta).strftime(form)


def _shift_text(value: object, delta: dt.timedelta) -> object:
    if not isinstance(value, str):
        return value
    value = _ISO_DATE.sub(lambda m: _moved(m, delta, "%Y-%m-%d"), value)
    return _COMPACT_DATE.sub(lambda m: _moved(m, delta, "%Y%m%d"), value)


def _shift_frame(frame: pd.DataFrame, delta: dt.timedelta) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            out[column] = values + delta
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            sample = values.dropna()
            first = sample.iloc[0] if len(sample) else None
            if isinstance(first, dt.date) and not isinstance(first, dt.datetime):
                out[column] = _each_distinct(values, lambda d: d + delta if isinstance(d, dt.date) else d)
            elif isinstance(first, str):
                out[column] = pd.Series(_each_distinct(values, lambda v: _shift_text(v, delta)), index=out.index)
    return out


def _each_distinct(values: pd.Series, move: Callable[[Any], Any]) -> list[Any]:
    """``move`` applied to each value, computed once per distinct value (a season repeats its ids, teams and
    dates thousands of times: moving the demo's cells one by one took 2.6-3.7 s of its 12, once per distinct
    value 0.4 s, the same frames); missing values are kept as they are. Only where every value is of one type:
    values of different types may be equal (1, 1.0 and True) and would share one result."""
    if values.dtype == object and len({type(v) for v in values.dropna().to_numpy()}) > 1:  # a str dtype holds str
        return [move(v) for v in values]
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    moved = np.empty(len(distinct) + 1, dtype=object)  # the last one, at code -1, is replaced below
    for i, value in enumerate(distinct):
        moved[i] = move(value)
    out = moved[codes]
    missing = codes < 0
    out[missing] = values.to_numpy(dtype=object)[missing]
    return list(out)


def last_day(demo: Demo) -> dt.date:
    """The season's last date: of its schedule and of every failure row's date."""
    days: list[dt.date] = [max(demo.schedule["game_date"])]
    for table, frame in demo.failures.items():
        days.append(max(frame["prediction_date" if table == "prediction_failures" else "analysis_date"]))
    return dt.date.fromisoformat(str(max(days)))


def in_the_present(demo: Demo, as_of: dt.date) -> Demo:
    """The same season moved so that its last day is the day before ``as_of``: every date, timestamp and date
    inside text (reasons, run ids, box-score game ids, lists of missing dates) moves together, and the season's
    year follows. What the processors would only write from ``as_of`` on (a phase-3 retry the next day) is not
    there yet: rows recorded at or after midnight of ``as_of`` are left out."""
    delta = (as_of - dt.timedelta(days=1)) - last_day(demo)
    cutoff = pd.Timestamp(dt.datetime.combine(as_of, dt.time(0), tzinfo=dt.UTC))
    schedule = _shift_frame(demo.schedule, delta)
    start = PRESEASON[0] + delta
    schedule["season_year"] = schedule["season_year"] + (start.year - PRESEASON[0].year)
    failures = {}
    for table, frame in demo.failures.items():
        moved = _shift_frame(frame, delta)
        failures[table] = moved[moved["created_at"] < cutoff].reset_index(drop=True)
    players = [replace(p, stints=[(d + delta, team) for d, team in p.stints]) for p in demo.players]
    return Demo(
        schedule=schedule,
        gamebook=_shift_frame(demo.gamebook, delta),
        analytics=_shift_frame(demo.analytics, delta),
        failures=failures,
        players=players,
        injected={k: [str(_shift_text(v, delta)) for v in vs] for k, vs in demo.injected.items()},
        as_of=as_of,
    )


def visits(demo: Demo, seed: int = 7) -> pd.DataFrame:
    """The operators' mornings at the dashboard over the demo's last three weeks (for "since my last visit"):
    most working days around nine, a weekend now and then. Only for a demo in the present (``as_of``)."""
    if demo.as_of is None:
        return pd.DataFrame(columns=["operator", "visited_at"])
    rng = random.Random(seed * 31 + 5)
    rows = []
    for name, _ in _OPERATORS:
        for back in range(21, 0, -1):
            day = demo.as_of - dt.timedelta(days=back)
            if rng.random() < (0.85 if day.weekday() < 5 else 0.15):
                at = dt.datetime.combine(day, dt.time(8, 0), tzinfo=dt.UTC) + dt.timedelta(minutes=rng.randrange(150))
                rows.append({"operator": name, "visited_at": at})
    frame = pd.DataFrame(rows)
    frame["visited_at"] = pd.to_datetime(frame["visited_at"], utc=True)
    return frame


# ---------------------------------------------------------------------------------------------
# Writing it
# ---------------------------------------------------------------------------------------------


def write(store: Store, demo: Demo, progress: Progress = _no_progress, *, actor: Actor | None) -> dict[str, int]:
    """The season's schedule, box scores, analytics and failure rows, into a store whose failure tables are empty
    (``seed`` adds the team's triage history). ``actor`` must be a resolver; the write is in the operations log."""
    with operations.logged(store, "demo", actor, origin="lib") as op:
        store.init_schema()
        if not store.is_empty():
            raise BadInput(f"{store.location} already holds failure rows: the demo would be written twice.",
                           "Write it into an empty database (`python -m lib demo --replace` empties one).")  # fmt: skip
        written = _write(store, demo, progress)
        op.summary = [f"Demo season: {demo.failure_rows:,} failure rows."]
    return written


def _write(store: Store, demo: Demo, progress: Progress) -> dict[str, int]:
    store.init_schema()
    written: dict[str, int] = {}
    steps = [
        ("nba_raw.nbac_schedule", demo.schedule),
        ("nba_raw.nbac_gamebook_player_stats", demo.gamebook),
        ("nba_analytics.player_game_summary", demo.analytics),
        *((f"nba_processing.{name}", frame) for name, frame in sorted(demo.failures.items())),
    ]
    steps.append(("nba_reference.processor_run_history", run_history(demo)))
    for i, (ref, frame) in enumerate(steps):
        progress(0.5 + 0.5 * i / len(steps), f"Writing {len(frame):,} rows to {ref}")
        written[ref] = store.insert_frame(ref, frame, label="demo")
    progress(1.0, "Demo data written")
    return written


def _phase(processor: str) -> str:
    if processor in PHASE4_PROCESSORS:
        return "phase_4_precompute"
    if processor in PHASE3_PROCESSORS:
        return "phase_3_analytics"
    return "phase_5_predictions"


def run_history(demo: Demo) -> pd.DataFrame:
    """``nba_reference.processor_run_history`` as the pipeline writes it: one run per processor and date of the
    season (those that recorded failures ended ``partial``, with their failures counted; the rest ``success``),
    triggered over Pub/Sub with a message id, plus a few stale ``running`` rows that never finished."""
    frames = []
    for frame in demo.failures.values():
        day = "prediction_date" if "prediction_date" in frame else "analysis_date"
        frames.append(frame[["processor_name", "run_id", day, "created_at"]].rename(columns={day: "data_date"}))
    failed = pd.concat(frames, ignore_index=True)
    failed["created_at"] = pd.to_datetime(failed["created_at"], utc=True)
    runs = failed.groupby(["processor_name", "run_id", "data_date"], as_index=False).agg(
        failures=("created_at", "size"), first=("created_at", "min"), last=("created_at", "max")
    )
    seen = set(zip(runs["processor_name"], runs["data_date"], strict=True))
    days = sorted({d for d in failed["data_date"] if d is not None and not pd.isna(d)})
    rows: list[dict[str, object]] = []
    for r in runs.to_dict("records"):
        failures = int(r["failures"])
        rows.append({"processor_name": r["processor_name"], "run_id": r["run_id"], "status": "partial",
                     "data_date": r["data_date"], "started_at": r["first"] - pd.Timedelta(minutes=4),
                     "processed_at": r["last"] + pd.Timedelta(seconds=30), "records_processed": 400 + failures,
                     "errors": json.dumps([f"{failures} entities failed"])})  # fmt: skip
    processors = sorted(set(runs["processor_name"]))
    for day in days:
        at = pd.Timestamp(dt.datetime.combine(day, dt.time(7, 0)), tz="UTC")  # the morning's runs, as the failures
        for n, p in enumerate(processors):
            if (p, day) not in seen:
                rows.append({"processor_name": p, "run_id": f"{p[:12].lower()}-{day:%Y%m%d}", "status": "success",
                             "data_date": day, "started_at": at + pd.Timedelta(minutes=3 * n),
                             "processed_at": at + pd.Timedelta(minutes=3 * n + 2), "records_processed": 450,
                             "errors": None})  # fmt: skip
    for p, day in zip(processors[:3], days[-40::13], strict=False):  # runs that never said they ended
        at = pd.Timestamp(dt.datetime.combine(day, dt.time(7, 30)), tz="UTC")
        rows.append({"processor_name": p, "run_id": f"{p[:12].lower()}-{day:%Y%m%d}-stuck", "status": "running",
                     "data_date": day, "started_at": at, "processed_at": None, "records_processed": None,
                     "errors": None})  # fmt: skip
    out = pd.DataFrame(rows).sort_values(["data_date", "started_at", "processor_name"]).reset_index(drop=True)
    out["season_year"] = SEASON_YEAR
    took = pd.to_datetime(out["processed_at"], utc=True) - pd.to_datetime(out["started_at"], utc=True)
    out["duration_seconds"] = took.dt.total_seconds()
    out["phase"] = out["processor_name"].map(_phase)
    out["trigger_source"] = "pubsub"
    out["trigger_message_id"] = [str(10_000_000 + n) for n in range(len(out))]
    out["trigger_message_data"] = [
        json.dumps({"processors": [p], "analysis_date": str(d), "trigger_source": "orchestrator"})
        for p, d in zip(out["processor_name"], out["data_date"], strict=True)
    ]
    out["retry_attempt"] = 0
    out["backfill_mode"] = False
    return out


# ---------------------------------------------------------------------------------------------
# The team's triage during the season: who settled what, when (for the Settling page and the briefing)
# ---------------------------------------------------------------------------------------------

_OPERATORS = (("alice", 5), ("bob", 3), ("carol", 2))
_PERMANENT_CATEGORIES = {"INCOMPLETE_DATA", "INSUFFICIENT_DATA", "EXPECTED_INCOMPLETE", "INCOMPLETE_UPSTREAM"}
#: The season's last days stay untouched: the open backlog a team has on a Monday morning.
_UNTOUCHED_DAYS = 10


def _delay(rng: random.Random, median_hours: float) -> dt.timedelta:
    return dt.timedelta(hours=min(24 * 40, rng.lognormvariate(math.log(median_hours), 1.0)))


def _items_of(rows: pd.DataFrame) -> Iterator[tuple[tuple[str, str, dt.date, str], list[dt.datetime], str]]:
    """Each item of rows sorted by key and time: its key, when it was seen, and its latest category (in key order,
    as a groupby would give them, without building a frame per item)."""
    names = ["source_table", "processor_name", "item_date", "entity_id"]
    rows = rows.dropna(subset=names)
    keys = list(zip(*(rows[n].tolist() for n in names), strict=True))
    seen = [pd.Timestamp(t).to_pydatetime() for t in rows["created_at"]]
    categories = [str(c) for c in rows["failure_category"]]
    order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: each item's rows stay in time order
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and keys[order[end]] == keys[order[start]]:
            end += 1
        first = keys[order[start]]
        key = (str(first[0]), str(first[1]), first[2], str(first[3]))
        yield key, [seen[i] for i in order[start:end]], categories[order[end - 1]]
        start = end


def triage_history(demo: Demo, seed: int = 7) -> pd.DataFrame:
    """Resolution events a team could have made during the season: most items settled within a day or two
    (did-not-play categories PERMANENT, the rest RESOLVED after re-processing), some by the nightly
    auto-resolve, a few reopened; items recorded again after being resolved regress, and most are settled
    again. Deterministic for a seed; every event is in the past of the failure rows it follows."""
    from lib.model import ItemKey

    rng = random.Random(seed * 7919 + 11)
    operators = [name for name, weight in _OPERATORS for _ in range(weight)]
    frames = []
    for table, frame in sorted(demo.failures.items()):
        date_column = "prediction_date" if table == "prediction_failures" else "analysis_date"
        columns = ["source_table", "processor_name", "item_date", "entity_id", "failure_category", "created_at"]
        frames.append(frame.assign(source_table=table, item_date=frame[date_column])[columns])
    rows = pd.concat(frames, ignore_index=True).sort_values(
        ["source_table", "processor_name", "item_date", "entity_id", "created_at"], kind="stable"
    )
    last_day = max(rows["item_date"])
    events: list[dict[str, object]] = []

    def add(key: ItemKey, frm: str, to: str, who: str, at: dt.datetime, note: str, origin: str) -> None:
        events.append({
            "event_id": f"demo-{rng.getrandbits(64):016x}", "item_key": key.text, "source_table": key.source_table,
            "processor_name": key.processor_name, "item_date": key.item_date, "entity_id": key.entity_id,
            "from_status": frm, "to_status": to, "actor": who, "note": note, "at": at,
            "batch_id": f"demo-{who}-{at:%Y%m%d}", "origin": origin,
        })  # fmt: skip

    for (table, processor, day, entity), seen, category in _items_of(rows):
        if (last_day - day).days < _UNTOUCHED_DAYS or rng.random() > 0.6:
            continue
        key = ItemKey(table, processor, day, entity)
        permanent = category.upper() in _PERMANENT_CATEGORIES and rng.random() < 0.7
        if permanent:
            at = seen[0] + _delay(rng, 20)
            add(key, "UNRESOLVED", "PERMANENT", rng.choice(operators), at, "Did not play: confirmed in the gamebook.",
                "dashboard")  # fmt: skip
            if rng.random() < 0.03:  # a second look: the player did play after all
                back = at + _delay(rng, 30)
                add(key, "PERMANENT", "UNRESOLVED", rng.choice(operators), back, "He played: box score has minutes.",
                    "dashboard")  # fmt: skip
                add(key, "UNRESOLVED", "RESOLVED", rng.choice(operators), back + _delay(rng, 10),
                    "Re-processed after the box score was re-scraped.", "dashboard")  # fmt: skip
            continue
        # RESOLVED after re-processing: by a person soon after the run, or by the nightly auto-resolve.
        if rng.random() < 0.25:
            night = dt.datetime.combine(seen[0].date() + dt.timedelta(days=1 + rng.randrange(3)), dt.time(4, 0),
                                        tzinfo=dt.UTC)  # fmt: skip
            at, who, origin, note = night, "system", "autoresolve", "Auto-resolved: every missing game has arrived."
        else:
            at, who, origin = seen[0] + _delay(rng, 6), rng.choice(operators), "dashboard"
            if len(seen) > 1 and rng.random() < 0.5:  # resolved between two attempts of the processor
                at = seen[0] + (seen[1] - seen[0]) * rng.uniform(0.2, 0.8)
            note = "Re-processed; the data is complete now."
        add(key, "UNRESOLVED", "RESOLVED", who, at, note, origin)
        again = [t for t in seen if t > at]
        if again and rng.random() < 0.7:  # recorded again after it was resolved: settled again
            add(key, "REGRESSED", "RESOLVED", rng.choice(operators), again[0] + _delay(rng, 12),
                "Recurred after a rerun; re-processed again.", "dashboard")  # fmt: skip
    if demo.as_of is not None:  # nothing has happened yet from the demo's today on
        cutoff = dt.datetime.combine(demo.as_of, dt.time(0), tzinfo=dt.UTC)
        events = [e for e in events if e["at"] < cutoff]  # type: ignore[operator]
    frame = pd.DataFrame(events)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def seed(
    store: Store,
    seed: int = 7,
    progress: Progress = _no_progress,
    *,
    actor: Actor | None,
    origin: str = "lib",
    history: bool = True,
    as_of: dt.date | None = None,
) -> Demo:
    """Simulate the season and write it (``actor`` must be a resolver; recorded in the operations log), with
    the team's triage during the season (``history``: resolution events, for the Settling page, and, for a demo
    in the present, the operators' visits). ``as_of`` places the season so that its last day is the day before
    (the dashboard's first start passes today); without it the season keeps its real 2021-22 dates."""
    with operations.logged(store, "demo", actor, origin=origin) as op:
        progress(0.05, "Simulating the 2021-22 season (schedule, rosters, box scores)")
        demo = build(seed)
        if as_of is not None:
            demo = in_the_present(demo, as_of)
            progress(0.4, f"Placed the season to end on {as_of - dt.timedelta(days=1)}")
        progress(0.45, f"Derived {demo.failure_rows:,} failure rows from the processors")
        _write(store, demo, progress)
        first, last = min(demo.schedule["game_date"]), last_day(demo)
        op.summary = [f"Demo season, seed {seed}, {first} to {last}: {demo.failure_rows:,} failure rows."]
        if history:
            events = triage_history(demo, seed)
            store.insert_frame("nba_processing.failure_resolutions", events, label="demo")
            op.summary.append(f"{len(events):,} resolution events of the team's triage during the season.")
            seen = visits(demo, seed)
            if len(seen):
                store.insert_frame("nba_processing.triage_visits", seen, label="demo")
                op.summary.append(f"{len(seen):,} visits of the operators over the last three weeks.")
    if history:
        from lib import resolution

        # Not the item index: a new demo is classified next (or read first), and either rebuilds every date anyway.
        resolution.sync_statuses(store, actor=actor, origin=origin, refresh_index=False)
    return demo


# ---------------------------------------------------------------------------------------------
# Scale rows for benchmarks: generated in the engine, one parameterised statement per chunk
# ---------------------------------------------------------------------------------------------

# A cheap deterministic mix of the row number; integer arithmetic that both engines compute alike.
# Within a date, row slots map to distinct (processor, player) pairs first, so that items stay
# realistic (mostly one row each) and only the overflow repeats as reruns.
_SCALE_SQL = """
INSERT INTO nba_processing.precompute_failures
  (processor_name, run_id, analysis_date, entity_id, failure_category, failure_reason, can_retry,
   failure_type, is_correctable, resolution_status, created_at)
SELECT
  CASE MOD(DIV(slot, @player_count), 5) WHEN 0 THEN 'PlayerDailyCacheProcessor'
    WHEN 1 THEN 'MLFeatureStoreProcessor' WHEN 2 THEN 'PlayerCompositeFactorsProcessor'
    WHEN 3 THEN 'PlayerShotZoneAnalysisProcessor' ELSE 'TeamDefenseZoneAnalysisProcessor' END AS processor_name,
  CONCAT('scale-', FORMAT_DATE('%Y%m%d', day), '-', CAST(MOD(h2, 7) AS STRING)) AS run_id,
  day AS analysis_date,
  pl.lookup AS entity_id,
  CASE WHEN MOD(h1, 100) < 55 THEN 'INSUFFICIENT_DATA' WHEN MOD(h1, 100) < 80 THEN 'INCOMPLETE_DATA'
    WHEN MOD(h1, 100) < 88 THEN 'INCOMPLETE_UPSTREAM' WHEN MOD(h1, 100) < 93 THEN 'UPSTREAM_INCOMPLETE'
    WHEN MOD(h1, 100) < 96 THEN 'MINIMUM_THRESHOLD_NOT_MET' WHEN MOD(h1, 100) < 98 THEN 'PROCESSING_ERROR'
    ELSE 'STALE_DATA' END AS failure_category,
  'Synthetic history row for benchmarks' AS failure_reason,
  MOD(h1, 3) <> 0 AS can_retry,
  CASE MOD(h2, 6) WHEN 0 THEN 'PLAYER_DNP' WHEN 1 THEN 'DATA_GAP' WHEN 2 THEN 'MIXED' ELSE NULL END AS failure_type,
  CASE MOD(h2, 6) WHEN 0 THEN FALSE WHEN 1 THEN TRUE WHEN 2 THEN TRUE ELSE NULL END AS is_correctable,
  IF(MOD(h1, 17) = 0, NULL, 'UNRESOLVED') AS resolution_status,
  TIMESTAMP_ADD(TIMESTAMP(day), INTERVAL 420 + MOD(h1, 180) MINUTE) AS created_at
FROM (
  SELECT n, h1, MOD(h1 * 48271, 2147483647) AS h2, MOD(n, @per_day) AS slot,
    CAST(DATE_SUB(@last_date, INTERVAL DIV(n, @per_day) DAY) AS DATE) AS day
  FROM (
    SELECT n, MOD(n * 2654435761 + @seed * 97, 4294967291) AS h1
    FROM UNNEST(GENERATE_ARRAY(@first_n, @last_n)) AS n
  ) AS numbered
) AS g
JOIN (
  SELECT lookup, ROW_NUMBER() OVER (ORDER BY lookup) - 1 AS idx FROM UNNEST(@players) AS lookup
) AS pl ON pl.idx = MOD(g.slot, @player_count)
"""


def add_scale_rows(
    store: Store,
    rows: int,
    *,
    last_date: dt.date = REGULAR[1],
    per_day: int = 3000,
    seed: int = 7,
    players: list[str] | None = None,
    chunk: int = 500_000,
    progress: Progress = _no_progress,
    actor: Actor | None,
    origin: str = "lib",
) -> int:
    """Add ``rows`` synthetic phase-4 failure rows ending at ``last_date``, ``per_day`` rows a date
    (``actor`` must be a resolver; recorded in the operations log)."""
    if not 0 <= rows <= MAX_SCALE:
        raise BadInput(f"The demo's extra rows must be between 0 and {MAX_SCALE:,}, not {rows:,}.")
    with operations.logged(store, "demo", actor, origin=origin) as op:
        done = _scale_rows(store, rows, last_date=last_date, per_day=per_day, seed=seed, players=players, chunk=chunk,
                           progress=progress)  # fmt: skip
        op.summary = [f"{done:,} synthetic failure rows added for benchmarks."]
    return done


def _scale_rows(
    store: Store,
    rows: int,
    *,
    last_date: dt.date,
    per_day: int,
    seed: int,
    players: list[str] | None,
    chunk: int,
    progress: Progress,
) -> int:
    pool = players or sorted({p.lookup for p in build_players(random.Random(seed))})
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        store.execute(
            _SCALE_SQL,
            {
                "first_n": done,
                "last_n": done + n - 1,
                "per_day": per_day,
                "last_date": last_date,
                "seed": seed,
                "players": pool,
                "player_count": len(pool),
            },
            label="demo-scale",
        )
        done += n
        progress(done / rows, f"Generated {done:,} of {rows:,} scale rows in the engine")
    return done


#: The most extra rows a demo may ask for (the benchmarks go to 50M).
MAX_SCALE = 200_000_000


def parse_scale(text: str) -> int:
    """``250k``, ``1M``, ``10M`` or a plain number of extra failure rows."""
    t = text.strip().lower().replace("_", "").replace(",", "")
    factor = 1
    if t.endswith("k"):
        factor, t = 1_000, t[:-1]
    elif t.endswith("m"):
        factor, t = 1_000_000, t[:-1]
    try:
        number = float(t)
    except ValueError as exc:
        raise ValueError(f"--scale takes a row count such as 250k, 1M or 10M, not {text[:40]!r}") from exc
    if not math.isfinite(number) or not 0 <= number * factor <= MAX_SCALE:
        raise ValueError(f"--scale takes a row count from 0 to {MAX_SCALE // 1_000_000:,}M, not {text[:40]!r}")
    return int(number * factor)


__all__ = ["PHASE4_PROCESSORS", "Demo", "add_scale_rows", "build", "parse_scale", "seed", "write"]
