"""Real 2019-20 box scores, with data gaps injected so that the truth is known by construction.

From the public box scores (``games.csv`` / ``games_details.csv``: an empty COMMENT means the player
played; otherwise a did-not-play reason; inactive players have no row at all) this builds the evidence
tables, then removes data on purpose, remembering what it removed:

* whole games from raw (and so from analytics), and one team's side of other games;
* analytics rows of players who played (raw kept);
* names: a player's raw row carries only his last name, unresolved (and analytics has no row).

Failures are then generated the way the pipeline records them: its completeness check takes the
player's team as of the analysis date D (his latest game before D) and counts that team's games in each
processor's window(s) (days, games, or the union of several); a game the processor's analytics lacks is
missing. The truth of each missing game comes from the original box score of that side and from what was
removed, never from the classifier's rules. ``history_from`` cuts everything (schedule, box scores,
analytics) to start mid-season, as an evidence history that starts late does.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import random
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lib.classifier import ClassifierConfig, minutes_positive
from lib.model import FailureType, GameVerdict, Window, parse_windows, windows_label
from lib.names import player_lookup
from lib.store.base import Store

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "nba-2019-20-subset"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba-2019-20"
LOOKBACK = 14
MIN_EXPECTED = 5
PERMANENT = {GameVerdict.PLAYER_DNP, GameVerdict.NOT_IN_BOXSCORE}


@dataclass
class RealWorld:
    schedule: pd.DataFrame
    gamebook: pd.DataFrame
    analytics: pd.DataFrame
    failures: pd.DataFrame  # precompute_failures rows
    truth_games: dict[tuple[str, str, dt.date], dict[dt.date, GameVerdict]]  # (processor, player, D) -> date -> verdict
    truth_type: dict[tuple[str, str, dt.date], FailureType] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name if (folder / name).exists() else folder / f"{name}.gz"
    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)


def _minutes(text: str) -> str | None:
    """The source's messy minutes ('27:08:00', '22:17', '34.0', '0,375') as 'MM:SS'; None when absent."""
    t = text.strip().replace(",", ".")
    if not t:
        return None
    if ":" in t:
        parts = t.split(":")
        return f"{int(float(parts[0])):02d}:{int(float(parts[1])):02d}"
    value = float(t)
    return f"{int(value):02d}:{round((value % 1) * 60):02d}"


def build(
    folder: Path,
    *,
    seed: int = 2019,
    teams: set[str] | None = None,
    gaps: int = 6,
    history_from: dt.date | None = None,
) -> RealWorld:
    rng = random.Random(seed)
    games = _read(folder, "games.csv")
    details = _read(folder, "games_details.csv")
    team_of = dict(zip(details["TEAM_ID"], details["TEAM_ABBREVIATION"], strict=False))
    games = games.assign(
        game_date=pd.to_datetime(games["GAME_DATE_EST"], format="%d/%m/%Y").dt.date,
        home=games["HOME_TEAM_ID"].map(team_of),
        away=games["VISITOR_TEAM_ID"].map(team_of),
        game_id=games["GAME_ID"].str.zfill(10),
    ).dropna(subset=["home", "away"])
    games = games.drop_duplicates("game_id").sort_values(["game_date", "game_id"])
    if history_from is not None:
        games = games[games["game_date"] >= history_from]
    by_id = {r.GAME_ID: r for r in games.itertuples(index=False)}
    schedule = pd.DataFrame(
        {
            "game_id": games["game_id"],
            "game_date": games["game_date"],
            "game_status": 3,
            "home_team_tricode": games["home"],
            "away_team_tricode": games["away"],
            "season_year": 2019,
            "is_regular_season": games["game_id"].str.startswith("002"),
            "is_playoffs": False,
        }
    )

    # The original box scores, one row per listed player.
    rows = []
    for r in details.itertuples(index=False):
        g = by_id.get(r.GAME_ID)
        if g is None:
            continue
        comment = r.COMMENT.strip()
        minutes = _minutes(r.MIN)
        played = not comment and minutes_positive(minutes)
        rows.append(
            {
                "game_id": f"{g.game_date:%Y%m%d}_{g.away}_{g.home}",
                "schedule_id": g.game_id,
                "game_date": g.game_date,
                "team_abbr": r.TEAM_ABBREVIATION,
                "player_lookup": player_lookup(r.PLAYER_NAME),
                "player_name": r.PLAYER_NAME,
                "player_status": "active" if not comment else "dnp",
                "dnp_reason": comment or None,
                "minutes": minutes if not comment else None,
                "name_resolution_status": "resolved",
                "played": played,
            }
        )
    original = pd.DataFrame(rows).drop_duplicates(["game_id", "player_lookup"])

    # Inject gaps. Only regular-season games between the first and last three weeks can be chosen.
    ids = sorted(set(original["schedule_id"]))
    candidates = ids[len(ids) // 5 : -len(ids) // 5]
    raw_gap_games = set(rng.sample(candidates, gaps))
    side_gaps = {(gid, rng.choice([by_id[gid[2:]].home, by_id[gid[2:]].away]))
                 for gid in rng.sample([i for i in candidates if i not in raw_gap_games], gaps)}  # fmt: skip
    played_rows = original[original["played"] & ~original["schedule_id"].isin(raw_gap_games)]
    sides = zip(played_rows["schedule_id"], played_rows["team_abbr"], strict=True)
    played_rows = played_rows[[side not in side_gaps for side in sides]]
    picks = rng.sample(list(played_rows.index), 4 * gaps)
    analytics_gaps = set(picks[: 2 * gaps])
    name_gaps = set(picks[2 * gaps :])

    gamebook = original.copy()
    side = list(zip(gamebook["schedule_id"], gamebook["team_abbr"], strict=True))
    on_removed_side = pd.Series([s in side_gaps for s in side], index=gamebook.index, dtype=bool)
    removed = gamebook["schedule_id"].isin(raw_gap_games) | on_removed_side
    for i in name_gaps:
        last = original.at[i, "player_name"].replace(" Jr.", "").replace(" III", "").split()[-1]
        gamebook.at[i, "player_lookup"] = player_lookup(last)
        gamebook.at[i, "player_name"] = last
        gamebook.at[i, "name_resolution_status"] = "unresolved"
    analytics_source = gamebook[~removed & (gamebook["name_resolution_status"] == "resolved")]
    analytics_source = analytics_source[~analytics_source.index.isin(analytics_gaps)]
    analytics = pd.DataFrame(
        {
            "game_id": analytics_source["game_id"],
            "game_date": analytics_source["game_date"],
            "team_abbr": analytics_source["team_abbr"],
            "player_lookup": analytics_source["player_lookup"],
            "minutes_played": [
                (int(m[:2]) + int(m[3:]) / 60) if isinstance(m, str) else 0.0 for m in analytics_source["minutes"]
            ],
            "is_dnp": ~analytics_source["played"],
        }
    )
    # Phase 3 writes only some did-not-play rows.
    some_dnp = analytics["player_lookup"].map(lambda k: zlib.crc32(k.encode()) % 2 == 0).astype(bool)
    analytics = analytics[~analytics["is_dnp"] | some_dnp]
    gamebook = gamebook[~removed]

    world = RealWorld(
        schedule=schedule,
        gamebook=gamebook.drop(columns=["schedule_id", "played"]),
        analytics=analytics,
        failures=pd.DataFrame(),
        truth_games={},
        injected={
            "raw_gap_games": len(raw_gap_games),
            "side_gaps": len(side_gaps),
            "analytics_gaps": len(analytics_gaps),
            "name_gaps": len(name_gaps),
        },
    )
    _failures(world, original, games, raw_gap_games, side_gaps, analytics_gaps, name_gaps, teams, rng)
    return world


#: The processors simulated, with the windows their completeness checks count (see the domain brief).
PROCESSORS: dict[str, tuple[Window, ...]] = {
    "PlayerDailyCacheProcessor": parse_windows("5g,10g,7d,14d"),
    "PlayerCompositeFactorsProcessor": parse_windows("14d"),
}


def classifier_config() -> ClassifierConfig:
    """The windows the simulated processors use, as an operator would configure them."""
    return ClassifierConfig(windows_by_processor=PROCESSORS, min_expected_games=MIN_EXPECTED)


def _failures(
    world: RealWorld,
    original: pd.DataFrame,
    games: pd.DataFrame,
    raw_gap_games: set[str],
    side_gaps: set[tuple[str, str]],
    analytics_gaps: set[int],
    name_gaps: set[int],
    teams: set[str] | None,
    rng: random.Random,
) -> None:
    """Failures as the pipeline records them, and the truth of each of their missing games.

    The pipeline's completeness check, simulated: on analysis date D (a date his team plays) the player's
    team is the team he really belonged to as of D, that of his latest listing before D in the original box
    scores (any status; a player with none yet is not processed); the expected games are that team's final
    games in the processor's window(s); a game is missing when analytics, as the processor saw it (gaps
    injected), has no played row of his on that date. Each missing game's truth follows from the original
    box score of that team's side and from what was removed.
    """
    team_games: dict[str, list[tuple[dt.date, str]]] = defaultdict(list)
    for g in games.itertuples(index=False):
        team_games[g.home].append((g.game_date, g.game_id))
        team_games[g.away].append((g.game_date, g.game_id))
    for listing in team_games.values():
        listing.sort()
    listed_with: dict[str, list[tuple[dt.date, str]]] = defaultdict(list)  # original rows, any status
    listed: dict[tuple[str, dt.date, str], int] = {}
    for i, r in zip(original.index, original.itertuples(index=False), strict=True):
        listed_with[r.player_lookup].append((r.game_date, r.team_abbr))
        listed[(r.player_lookup, r.game_date, r.team_abbr)] = i
    played = defaultdict(set)  # analytics as injected: what the processor saw
    for r in world.analytics.itertuples(index=False):
        if not r.is_dnp:
            played[r.player_lookup].add(r.game_date)

    def team_before(player: str, day: dt.date) -> str | None:
        rows = sorted(listed_with[player])
        i = bisect.bisect_left(rows, (day, ""))
        return rows[i - 1][1] if i else None

    def counted(team: str, day: dt.date, windows: tuple[Window, ...]) -> list[tuple[dt.date, str]]:
        before = [(d, gid) for d, gid in team_games[team] if d < day]
        chosen: set[tuple[dt.date, str]] = set()
        for w in windows:
            if w.kind == "days":
                chosen |= {(d, gid) for d, gid in before if d >= day - dt.timedelta(days=w.size)}
            else:
                chosen |= set(before[-w.size :])
        return sorted(chosen)

    def truth(player: str, day: dt.date, gid: str, team: str) -> GameVerdict:
        if gid in raw_gap_games or (gid, team) in side_gaps:
            return GameVerdict.RAW_DATA_GAP
        i = listed.get((player, day, team))
        if i is None:
            return GameVerdict.NOT_IN_BOXSCORE  # inactive (the source omits him), or not on that roster yet
        if not original.at[i, "played"]:
            return GameVerdict.PLAYER_DNP
        if i in name_gaps:
            return GameVerdict.NAME_UNRESOLVED
        if i in analytics_gaps:
            return GameVerdict.ANALYTICS_GAP
        raise AssertionError(f"{player} played on {day} and nothing was removed, yet he is missing")

    rows = []
    for player in sorted(listed_with):
        if teams and not {t for _, t in listed_with[player]} & teams:
            continue
        for processor, windows in PROCESSORS.items():
            days = sorted({d for t in {t for _, t in listed_with[player]} for d, _ in team_games[t]})
            for day in days:
                team = team_before(player, day)
                if team is None or day not in {d for d, _ in team_games[team]}:
                    continue  # processors run for players they can place whose team plays on the date
                expected = counted(team, day, windows)
                missing = [(d, gid) for d, gid in expected if d not in played[player]]
                if not missing:
                    continue
                verdicts = {d: truth(player, d, gid, team) for d, gid in missing}
                explicit = rng.random() < 0.2  # some rows carry their missing dates, as newer processors write them
                rows.append(
                    {
                        "processor_name": processor,
                        "run_id": f"{processor[:6].lower()}-{day:%Y%m%d}",
                        "analysis_date": day,
                        "entity_id": player,
                        "failure_category": "INCOMPLETE_DATA",
                        "failure_reason": f"{windows_label(windows)}: {len(expected) - len(missing)} of "
                        f"{len(expected)} games",
                        "can_retry": True,
                        "missing_game_dates": json.dumps([d.isoformat() for d in sorted(verdicts)])
                        if explicit
                        else None,
                        "resolution_status": "UNRESOLVED",
                        "created_at": pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=8),
                    }
                )
                world.truth_games[(processor, player, day)] = verdicts
                world.truth_type[(processor, player, day)] = _failure_type(len(expected), list(verdicts.values()))
    world.failures = pd.DataFrame(rows)


def _failure_type(expected: int, verdicts: list[GameVerdict]) -> FailureType:
    correctable = [v for v in verdicts if v not in PERMANENT]
    if expected < MIN_EXPECTED:
        return FailureType.INSUFFICIENT_HISTORY
    if len(correctable) == len(verdicts):
        return FailureType.DATA_GAP
    if not correctable:
        return FailureType.PLAYER_DNP
    return FailureType.MIXED


@dataclass
class Accuracy:
    games: int
    games_right: int
    failures: int
    failures_right: int
    confusion: dict[tuple[str, str], int]
    by_verdict: dict[str, tuple[int, int]] = field(default_factory=dict)  # truth -> (right, total)
    by_type: dict[str, tuple[int, int]] = field(default_factory=dict)
    type_confusion: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def per_game(self) -> float:
        return self.games_right / self.games if self.games else 0.0

    @property
    def per_failure(self) -> float:
        return self.failures_right / self.failures if self.failures else 0.0

    def report(self, title: str) -> str:
        lines = [
            f"{title}: per game {self.per_game:.4%} ({self.games_right:,}/{self.games:,}), "
            f"per failure {self.per_failure:.4%} ({self.failures_right:,}/{self.failures:,})",
            "  per verdict: " + ", ".join(f"{k} {r:,}/{n:,}" for k, (r, n) in sorted(self.by_verdict.items())),
            "  per failure type: " + ", ".join(f"{k} {r:,}/{n:,}" for k, (r, n) in sorted(self.by_type.items())),
            f"  games wrong (truth, verdict): {dict(sorted(self.confusion.items()))}",
            f"  failures wrong (truth, type): {dict(sorted(self.type_confusion.items()))}",
        ]
        return "\n".join(lines)


def write(store: Store, world: RealWorld) -> None:
    store.init_schema()
    store.insert_frame("nba_raw.nbac_schedule", world.schedule)
    store.insert_frame("nba_raw.nbac_gamebook_player_stats", world.gamebook)
    store.insert_frame("nba_analytics.player_game_summary", world.analytics)
    failures = world.failures.copy()
    failures["created_at"] = pd.to_datetime(failures["created_at"], utc=True)
    store.insert_frame("nba_processing.precompute_failures", failures)


def measure(store: Store, world: RealWorld) -> Accuracy:
    """Compare what the classifier wrote with the truth, game by game and failure by failure."""
    wide = {"a": dt.date(1900, 1, 1), "b": dt.date(2999, 1, 1)}
    rows = store.query(
        "SELECT processor_name, entity_id, analysis_date, game_date, verdict FROM nba_processing.failure_missing_games "
        "WHERE analysis_date BETWEEN @a AND @b",
        wide,
    )
    predicted: dict[tuple[str, str, dt.date], dict[dt.date, str]] = defaultdict(dict)
    for r in rows.itertuples(index=False):
        predicted[(r.processor_name, r.entity_id, r.analysis_date)][r.game_date] = r.verdict
    types = store.query(
        "SELECT processor_name, entity_id, analysis_date, failure_type FROM nba_processing.precompute_failures "
        "WHERE analysis_date BETWEEN @a AND @b",
        wide,
    )
    predicted_type = {
        (r.processor_name, r.entity_id, r.analysis_date): r.failure_type for r in types.itertuples(index=False)
    }
    games = right = 0
    confusion: dict[tuple[str, str], int] = defaultdict(int)
    by_verdict: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, truth in world.truth_games.items():
        guess = predicted.get(key, {})
        for day in set(truth) | set(guess):
            games += 1
            t = truth[day].value if day in truth else "-"
            g = guess.get(day, "-")
            right += t == g
            by_verdict[t][0] += t == g
            by_verdict[t][1] += 1
            if t != g:
                confusion[(t, g)] += 1
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    type_confusion: dict[tuple[str, str], int] = defaultdict(int)
    for k, t in world.truth_type.items():
        g = str(predicted_type.get(k))
        by_type[t.value][0] += g == t.value
        by_type[t.value][1] += 1
        if g != t.value:
            type_confusion[(t.value, g)] += 1
    failures_right = sum(r for r, _ in by_type.values())
    return Accuracy(
        games,
        right,
        len(world.truth_type),
        failures_right,
        dict(confusion),
        {k: (r, n) for k, (r, n) in by_verdict.items()},
        {k: (r, n) for k, (r, n) in by_type.items()},
        dict(type_confusion),
    )
