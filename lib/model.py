"""The vocabulary of failure triage: tables, categories, statuses, items and filters.

Plain values only: nothing here touches a database, a clock or Streamlit.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any


class SourceTable(StrEnum):
    """The pipeline's three failure tables, all in dataset ``nba_processing``."""

    PRECOMPUTE = "precompute_failures"
    ANALYTICS = "analytics_failures"
    PREDICTION = "prediction_failures"

    @property
    def spec(self) -> FailureTableSpec:
        return FAILURE_TABLE_SPECS[self]

    @property
    def phase(self) -> int:
        return self.spec.phase

    @property
    def date_column(self) -> str:
        return self.spec.date_column


@dataclass(frozen=True)
class FailureTableSpec:
    """What differs between the failure tables: the one place their columns are named. The item relation's reads
    (lib/store/relation.py), the classifier's updates, the status sync and the processors' run deletes are all
    generated from it."""

    table: SourceTable
    phase: int
    #: The partition column: the date the failure is about.
    date_column: str
    #: The JSON list of what is missing (game dates, game ids, upstream tables).
    missing_column: str
    #: The processor's expected and actual counts, if the table has them.
    expected_column: str | None = None
    actual_column: str | None = None
    #: The entity type column, if the table records it (else it is guessed from the id's shape).
    entity_type_column: str | None = None
    #: Whether the classifier writes its game window into the row (counts, missing dates, raw_data_checked).
    classifier_writes_window: bool = False

    @property
    def ref(self) -> str:
        return f"nba_processing.{self.table.value}"


FAILURE_TABLE_SPECS: dict[SourceTable, FailureTableSpec] = {
    SourceTable.PRECOMPUTE: FailureTableSpec(
        SourceTable.PRECOMPUTE, 4, "analysis_date", "missing_game_dates", "expected_game_count", "actual_game_count",
        classifier_writes_window=True,
    ),
    SourceTable.ANALYTICS: FailureTableSpec(
        SourceTable.ANALYTICS, 3, "analysis_date", "missing_game_ids", "expected_record_count", "actual_record_count",
        entity_type_column="entity_type",
    ),
    SourceTable.PREDICTION: FailureTableSpec(SourceTable.PREDICTION, 5, "prediction_date", "missing_upstream_tables"),
}  # fmt: skip


class ResolutionStatus(StrEnum):
    UNRESOLVED = "UNRESOLVED"
    INVESTIGATING = "INVESTIGATING"
    RESOLVED = "RESOLVED"
    PERMANENT = "PERMANENT"
    #: Derived, never set: a RESOLVED item that a run recorded again after it was resolved.
    REGRESSED = "REGRESSED"

    @property
    def is_target(self) -> bool:
        """Whether a person (or the system) may set this status."""
        return self is not ResolutionStatus.REGRESSED


TARGET_STATUSES: tuple[ResolutionStatus, ...] = tuple(s for s in ResolutionStatus if s.is_target)
#: Statuses that still need someone (or the nightly job) to act, and those that settle an item.
OPEN_STATUSES: tuple[str, ...] = ("UNRESOLVED", "INVESTIGATING", "REGRESSED")
SETTLED_STATUSES: tuple[str, ...] = ("RESOLVED", "PERMANENT")


class Role(StrEnum):
    VIEWER = "viewer"  # sees everything, changes nothing
    RESOLVER = "resolver"  # acts on items


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the signed-in user, an operator name from config, or ``system``."""

    name: str
    role: Role = Role.RESOLVER


class FailureType(StrEnum):
    """The classifier's verdict on a whole failure."""

    PLAYER_DNP = "PLAYER_DNP"
    DATA_GAP = "DATA_GAP"
    MIXED = "MIXED"
    INSUFFICIENT_HISTORY = "INSUFFICIENT_HISTORY"
    COMPLETE = "COMPLETE"
    PROCESSING_ERROR = "PROCESSING_ERROR"
    UNKNOWN = "UNKNOWN"


#: Shown wherever an item has no failure_type yet.
UNCLASSIFIED = "UNCLASSIFIED"

#: Categories the operations team treats as expected (early season, bootstrap). Compared upper-cased.
EXPECTED_CATEGORIES: tuple[str, ...] = (
    "INSUFFICIENT_DATA",
    "EXPECTED_INCOMPLETE",
    "MINIMUM_THRESHOLD_NOT_MET",
    "CIRCUIT_BREAKER_ACTIVE",
)

#: Categories seen in production. Anything else is still valid data, shown as it is.
KNOWN_CATEGORIES: tuple[str, ...] = (
    "INSUFFICIENT_DATA",
    "INCOMPLETE_DATA",
    "EXPECTED_INCOMPLETE",
    "INCOMPLETE_UPSTREAM",
    "UPSTREAM_INCOMPLETE",
    "INCOMPLETE_DATA_SKIPPED",
    "MISSING_DATA",
    "MISSING_DEPENDENCY",
    "MISSING_DEPENDENCIES",
    "MISSING_UPSTREAM_IN_BACKFILL",
    "MINIMUM_THRESHOLD_NOT_MET",
    "STALE_DATA",
    "CIRCUIT_BREAKER_ACTIVE",
    "PROCESSING_ERROR",
    "calculation_error",
    "CALCULATION_ERROR",
    "VALIDATION_ERROR",
    "FEATURE_VALIDATION_ERROR",
    "REGISTRY_LOOKUP_FAILED",
    "BIGQUERY_ERROR",
    "DATA_ERROR",
)

PHASE4_PROCESSORS: tuple[str, ...] = (
    "TeamDefenseZoneAnalysisProcessor",
    "PlayerShotZoneAnalysisProcessor",
    "PlayerCompositeFactorsProcessor",
    "PlayerDailyCacheProcessor",
    "MLFeatureStoreProcessor",
)
PHASE3_PROCESSORS: tuple[str, ...] = (
    "PlayerGameSummaryProcessor",
    "TeamOffenseGameSummaryProcessor",
    "TeamDefenseGameSummaryProcessor",
    "UpcomingPlayerGameContextProcessor",
    "UpcomingTeamGameContextProcessor",
)
PHASE5_PROCESSORS: tuple[str, ...] = ("PredictionCoordinator", "PlayerPropPredictionWorker")

CORRECTABLE_CHOICES = ("correctable", "uncorrectable", "unknown")

#: Sort orders offered by the failure list, by name; the SQL for each lives in the store.
SORTS: tuple[str, ...] = (
    "newest date",
    "oldest date",
    "most occurrences",
    "last seen",
    "processor",
    "entity",
)


@dataclass(frozen=True)
class ItemKey:
    """A failure item: every row of one table, processor, date and entity, across reruns."""

    source_table: str
    processor_name: str
    item_date: dt.date
    entity_id: str

    @property
    def text(self) -> str:
        return (
            f"{self.source_table}:{encode_key_part(self.processor_name)}:{self.item_date.isoformat()}:{self.entity_id}"
        )

    @classmethod
    def parse(cls, text: str) -> ItemKey:
        """Parse ``TABLE:PROCESSOR:YYYY-MM-DD:ENTITY``, the inverse of :attr:`text` for any processor name and
        entity: the processor's ``%`` and ``:`` are written ``%25`` and ``%3A``; the entity, last, is taken
        whole (colons and all, and it may be empty)."""
        if not isinstance(text, str):
            raise ValueError("An item key is text")
        parts = text.split(":", 3)
        if len(parts) != 4:
            raise ValueError(f"Not an item key (TABLE:PROCESSOR:YYYY-MM-DD:ENTITY): {text[:200]!r}")
        table, processor, day, entity = parts
        if table not in {t.value for t in SourceTable}:
            raise ValueError(f"Unknown failure table {table[:60]!r} in item key")
        try:
            date = dt.date.fromisoformat(day)
        except ValueError as exc:
            raise ValueError(f"Bad date {day[:40]!r} in item key") from exc
        return cls(table, decode_key_part(processor), date, entity)


_KEY_ESCAPES = {"25": "%", "3A": ":"}


def encode_key_part(text: str) -> str:
    """``%`` and ``:`` escaped, so that a key splits back into its parts whatever the names hold."""
    return text.replace("%", "%25").replace(":", "%3A")


def decode_key_part(text: str) -> str:
    return re.sub(r"%(25|3A)", lambda m: _KEY_ESCAPES[m.group(1)], text)


#: What "what changed since" can single out (lib/briefing.py), by name, for the list's filter and links.
CHANGE_KINDS: dict[str, str] = {
    "new": "New items",
    "regressed": "Regressed",
    "settled": "Settled",
    "reclassified": "Classification changed",
    "new_correctable": "New correctable work",
}

#: The widest dates any query covers when a range is left open (BigQuery's DATE range).
EARLIEST = dt.date(1, 1, 1)
LATEST = dt.date(9999, 12, 31)


@dataclass(frozen=True)
class Filters:
    """What the operator is looking at. Empty tuples and None mean "no restriction"."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    tables: tuple[str, ...] = ()
    processors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    failure_types: tuple[str, ...] = ()
    correctable: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    #: A search: the entity id contains this text (case ignored). Never the scope of a write built from a click.
    entity: str = ""
    #: One entity, exactly (a clicked player, team or game): the scope of writes built from what was clicked.
    #: None means no restriction; "" is the items without an entity (a NULL or empty entity_id).
    entity_exact: str | None = None
    hide_expected: bool = True
    #: Only the items where the dashboard's verdict differs from the one the pipeline wrote.
    disagree: bool = False
    #: Only the items that changed this way (a key of CHANGE_KINDS) since ``changed_since`` (UTC).
    changed: str = ""
    changed_since: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.changed and self.changed not in CHANGE_KINDS:
            raise ValueError(f"Unknown change {self.changed[:40]!r}: one of {', '.join(CHANGE_KINDS)}")
        if self.changed and self.changed_since is None:
            raise ValueError("A change filter needs the instant it counts from (changed_since)")
        if self.changed_since is not None and self.changed_since.tzinfo is None:
            raise ValueError("changed_since must carry its time zone")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"Date range is empty: {self.date_from} is after {self.date_to}")
        unknown_tables = set(self.tables) - {t.value for t in SourceTable}
        if unknown_tables:
            raise ValueError(f"Unknown failure table(s): {', '.join(sorted(unknown_tables))}")
        unknown_statuses = set(self.statuses) - {s.value for s in ResolutionStatus}
        if unknown_statuses:
            raise ValueError(f"Unknown resolution status(es): {', '.join(sorted(unknown_statuses))}")
        unknown_corr = set(self.correctable) - set(CORRECTABLE_CHOICES)
        if unknown_corr:
            raise ValueError(f"Unknown correctable choice(s): {', '.join(sorted(unknown_corr))}")

    def with_(self, **changes: Any) -> Filters:
        return replace(self, **changes)

    def to_params(self) -> dict[str, str]:
        """Flat string form for URLs and the command line (lists comma-joined)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                if value:
                    out[f.name] = ",".join(value)
            elif isinstance(value, dt.datetime):
                out[f.name] = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            elif isinstance(value, dt.date):
                out[f.name] = value.isoformat()
            elif f.name == "disagree":
                if value:
                    out[f.name] = "1"
            elif isinstance(value, bool):
                out[f.name] = "1" if value else "0"
            elif f.name == "entity_exact":
                if value is not None:
                    out[f.name] = value  # "" names the items without an entity
            elif value:
                out[f.name] = str(value)
        return out

    @classmethod
    def from_params(cls, params: dict[str, str]) -> Filters:
        """Inverse of :meth:`to_params`; raises ValueError naming the bad parameter."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            raw = params.get(f.name)
            if raw is None:
                continue
            if f.name == "changed_since":
                kwargs[f.name] = parse_instant(raw) if raw else None
            elif f.name in ("date_from", "date_to"):
                try:
                    kwargs[f.name] = dt.date.fromisoformat(raw) if raw else None
                except ValueError as exc:
                    raise ValueError(f"{f.name}: {raw[:40]!r} is not a YYYY-MM-DD date") from exc
            elif f.name == "hide_expected":
                kwargs[f.name] = raw not in ("0", "false", "False", "no")
            elif f.name == "disagree":
                kwargs[f.name] = raw in ("1", "true", "True", "yes")
            elif f.name in ("entity", "changed"):
                kwargs[f.name] = raw[:200]
            elif f.name == "entity_exact":
                kwargs[f.name] = raw  # never shortened: it names one entity
            else:
                kwargs[f.name] = tuple(v for v in raw.split(",") if v)
        return cls(**kwargs)


def parse_instant(raw: str) -> dt.datetime:
    """An ISO date-time (a date alone is midnight; no zone means UTC) as an aware UTC datetime."""
    text = str(raw).strip()
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1)) if text else None
    except ValueError:
        value = None
    if value is None or not dt.datetime(1970, 1, 2, tzinfo=dt.UTC) <= value.replace(tzinfo=value.tzinfo or dt.UTC):
        raise ValueError(f"{text[:40]!r} is not a date-time after 1970 (YYYY-MM-DDTHH:MM, UTC unless it says)")
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


#: The time now, as the writes that stamp their own instants read it (``stamp``).
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The time now, in UTC: the clock the command line and the dashboard give the writes that stamp their instants."""
    return dt.datetime.now(dt.UTC)


def stamp(now: dt.datetime, clock: Clock | None) -> dt.datetime:
    """The instant a write is stamped with, read inside the write: ``clock()``, never before ``now`` (``now`` alone
    without a clock, as tests do). Work that takes minutes and stamps at its start commits changes that fall before
    a visit they came after: "what changed since my last visit" would miss them."""
    return now if clock is None else max(now, clock())


def rising(clock: Clock | None) -> Clock | None:
    """``clock`` that never reads earlier than it did before (a wall clock can be stepped back): the batches of one
    run, and the auto-resolve's events after its re-classification, are stamped in the order they were written."""
    if clock is None:
        return None
    last = [dt.datetime(1970, 1, 2, tzinfo=dt.UTC)]

    def read() -> dt.datetime:
        last[0] = max(last[0], clock())
        return last[0]

    return read


@dataclass(frozen=True)
class Page:
    number: int = 1
    size: int = 50
    sort: str = "newest date"

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"Unknown sort {self.sort!r}; choose one of {', '.join(SORTS)}")
        if self.number < 1 or not 1 <= self.size <= 1000:
            raise ValueError("Page number starts at 1 and page size is between 1 and 1000")


@dataclass(frozen=True)
class Kpis:
    items: int = 0
    occurrences: int = 0
    unresolved: int = 0
    correctable: int = 0
    uncorrectable: int = 0
    unclassified: int = 0
    expected: int = 0
    all_items: int = 0  # items before setting expected categories aside

    @property
    def expected_share(self) -> float:
        return self.expected / self.all_items if self.all_items else 0.0


@dataclass(frozen=True)
class DataBounds:
    first_date: dt.date | None
    last_date: dt.date | None
    rows: int
    plausible_last: dt.date | None = None  # the last date not more than a year ahead: ends the default view
    #: Failure rows without a date: they belong to no item and no view (the pipeline's schema forbids them).
    undated: int = 0

    def default_range(self, days: int = 30) -> tuple[dt.date, dt.date] | None:
        end = self.plausible_last or self.last_date
        if end is None:
            return None
        start = max(end - dt.timedelta(days=days - 1), dt.date.min)
        if self.first_date and start < self.first_date:
            start = self.first_date
        return start, end


@dataclass(frozen=True)
class Choices:
    """Distinct values available to filter on."""

    processors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    failure_types: tuple[str, ...] = field(default=(*(t.value for t in FailureType), UNCLASSIFIED))


# ---------------------------------------------------------------------------------------------
# Classification: evidence in, verdict out (see lib/classifier.py)
# ---------------------------------------------------------------------------------------------


class GameVerdict(StrEnum):
    """Why one expected game is missing for a failure's entity."""

    PLAYER_DNP = "PLAYER_DNP"  # listed dnp/inactive or without minutes, or analytics says is_dnp
    NOT_IN_BOXSCORE = "NOT_IN_BOXSCORE"  # his team's side has raw rows, he is not among them
    RAW_DATA_GAP = "RAW_DATA_GAP"  # no raw rows for his team's side of the game
    ANALYTICS_GAP = "ANALYTICS_GAP"  # raw says he played, analytics has no row
    NAME_UNRESOLVED = "NAME_UNRESOLVED"  # his side has an unresolved name that may be him
    UNDECIDED = "UNDECIDED"  # the evidence cannot place the game (never guessed)

    @property
    def is_correctable(self) -> bool | None:
        if self is GameVerdict.UNDECIDED:
            return None
        return self in (GameVerdict.RAW_DATA_GAP, GameVerdict.ANALYTICS_GAP, GameVerdict.NAME_UNRESOLVED)


#: The longest window a processor may declare, in days and in games (a season is about 180 days, 82 games).
MAX_WINDOW_DAYS = 400
MAX_WINDOW_GAMES = 110


@dataclass(frozen=True)
class Window:
    """A processor's completeness window before the analysis date D: the last ``size`` days
    (``D - size <= game_date < D``) or the last ``size`` final games of the entity's team this season."""

    kind: str  # "days" or "games"
    size: int

    def __post_init__(self) -> None:
        if self.kind not in ("days", "games"):
            raise ValueError(f"A window counts 'days' or 'games', not {self.kind!r}")
        limit = MAX_WINDOW_DAYS if self.kind == "days" else MAX_WINDOW_GAMES
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 1 <= self.size <= limit:
            raise ValueError(f"A window of {self.kind} must be a whole number from 1 to {limit}, not {self.size!r}")

    @property
    def spec(self) -> str:
        return f"{self.size}{self.kind[0]}"

    @property
    def label(self) -> str:
        unit = self.kind if self.size != 1 else self.kind[:-1]
        return f"last {self.size} {unit}"

    @property
    def reach_days(self) -> int:
        """How many days before D this window can reach: exact for days; for games a generous bound (a
        team plays at least one game a week in season, All-Star break and postponements included)."""
        return self.size if self.kind == "days" else 7 * self.size + 21

    @classmethod
    def parse(cls, text: str) -> Window:
        """``14d``, ``14 days``, ``10g``, ``10 games`` (case and spaces ignored)."""
        value = str(text).strip().lower().replace(" ", "")
        match = re.fullmatch(r"(\d{1,6})(d|days?|g|games?)", value)
        if not match:
            raise ValueError(f"Not a window: {str(text)[:40]!r} (write e.g. 14d for 14 days or 10g for 10 games)")
        kind = "days" if match.group(2).startswith("d") else "games"
        return cls(kind, int(match.group(1)))


def parse_windows(text: str | Sequence[str]) -> tuple[Window, ...]:
    """One or several windows, e.g. ``"5g,10g,7d,14d"`` or ``["5g", "14d"]``; duplicates dropped, order kept."""
    parts = re.split(r"[,+;]", text) if isinstance(text, str) else [str(t) for t in text]
    windows = tuple(dict.fromkeys(Window.parse(p) for p in parts if p.strip()))
    if not windows:
        raise ValueError("No window given (write e.g. 14d for 14 days or 10g for 10 games)")
    return windows


def windows_label(windows: Sequence[Window]) -> str:
    """``last 5 games + last 14 days``: the expected games are the union of the windows."""
    return " + ".join(w.label for w in windows)


@dataclass(frozen=True)
class ScheduledGame:
    game_id: str
    game_date: dt.date
    home: str
    away: str
    status: int
    season: int | None = None  # nbac_schedule.season_year

    @property
    def is_final(self) -> bool:
        return self.status == 3

    def teams(self) -> tuple[str, str]:
        return (self.away, self.home)


@dataclass(frozen=True)
class Appearance:
    """One row of a player in the raw box scores (``source='raw'``) or in analytics."""

    game_date: dt.date
    team: str
    source: str  # "raw" or "analytics"
    status: str | None = None  # raw: active / dnp / inactive
    dnp_reason: str | None = None
    minutes: str | None = None  # raw "MM:SS"
    is_dnp: bool | None = None  # analytics
    minutes_played: float | None = None  # analytics
    resolved: bool = True  # raw: name_resolution_status is 'resolved'


@dataclass(frozen=True)
class FailureToClassify:
    source_table: str
    processor_name: str
    item_date: dt.date
    entity_id: str
    failure_category: str
    can_retry: bool | None = None
    entity_type: str | None = None  # analytics_failures says it; other tables are inferred
    missing_dates: tuple[dt.date, ...] | None = None  # as recorded in missing_game_dates
    missing_game_ids: tuple[str, ...] | None = None  # as recorded in missing_game_ids
    run_id: str = ""

    @property
    def key(self) -> ItemKey:
        return ItemKey(self.source_table, self.processor_name, self.item_date, self.entity_id)


@dataclass(frozen=True)
class MissingGame:
    game_date: dt.date
    game_id: str
    team: str
    verdict: GameVerdict
    dnp_reason: str | None = None

    @property
    def is_correctable(self) -> bool | None:
        return self.verdict.is_correctable


@dataclass(frozen=True)
class Verdict:
    failure_type: FailureType
    is_correctable: bool | None
    expected_game_count: int | None = None
    actual_game_count: int | None = None
    missing: tuple[MissingGame, ...] = ()
    raw_data_checked: bool = False
    note: str = ""

    @property
    def missing_dates_json(self) -> str:
        import json

        return json.dumps(sorted({m.game_date.isoformat() for m in self.missing}))
