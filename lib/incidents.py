"""Incidents: one row per root cause, with every failure item it explains.

The classifier's per-game evidence (``nba_processing.failure_missing_games``) names why each expected game of an
item is missing. Three verdicts name a cause outside the item, which one fix settles for every item it explains:

* ``RAW_DATA_GAP``: a game side's raw box score never arrived: one incident per game and team side;
* ``ANALYTICS_GAP``: the raw box score is there, phase 3 has no rows: one incident per game;
* ``NAME_UNRESOLVED``: a name in the box score the registry could not resolve: one per name and team.

A correctable item without such a cause (a processing error, an incomplete upstream, ...) belongs to the incident
of its processor's run on its date (``RUN``).

An item explained by two causes belongs to both; every count is of distinct items. Evidence is replaced when an
item is judged again; what it named before is kept in ``nba_processing.incident_links`` (lib/classification.py),
so an incident keeps the items it explained once their data is back: those are its settled items. An item counts
as open in an incident while it is open and its current evidence still names the cause.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lib.errors import BadInput
from lib.model import OPEN_STATUSES, PHASE3_PROCESSORS, Filters, decode_key_part, encode_key_part
from lib.store import queries as q
from lib.store.base import Store
from lib.workqueue import RECOVERY_STEP, compact_dates

#: The causes an item's evidence can name, in the order an incident's id spells them.
CAUSES: tuple[str, ...] = ("RAW_DATA_GAP", "ANALYTICS_GAP", "NAME_UNRESOLVED")
RUN = "RUN"
KINDS: tuple[str, ...] = (*CAUSES, RUN)
KIND_WORDS = {
    "RAW_DATA_GAP": "Raw box score missing",
    "ANALYTICS_GAP": "Phase 3 rows missing",
    "NAME_UNRESOLVED": "Unresolved name",
    RUN: "Processor run failed",
}
KIND_SHORT = {"RAW_DATA_GAP": "Box score", "ANALYTICS_GAP": "Phase 3", "NAME_UNRESOLVED": "Name", RUN: "Run"}
STATES = ("open", "settling", "settled")

COLUMNS = [
    "incident_id", "kind", "root_cause", "subject", "team", "run_date", "game_date", "last_game_date",
    "first_date", "last_date", "items", "open_items", "settled_items", "players", "processors", "processor_names",
    "categories", "first_seen", "age_days", "state", "reruns", "rerun_steps", "game_dates",
]  # fmt: skip


def _scope(filters: Filters) -> Filters:
    """Every item the filters name, open or settled, whatever its class: membership decides."""
    return filters.with_(statuses=(), correctable=())


_SQL = """,
evidence AS (
  SELECT verdict AS cause, COALESCE(game_id, '') AS game_id, COALESCE(team_abbr, '') AS team, game_date,
    source_table, processor_name, analysis_date AS item_date, entity_id, TRUE AS current
  FROM nba_processing.failure_missing_games
  WHERE analysis_date BETWEEN @date_from AND @date_to AND verdict IN UNNEST(@causes)
  UNION ALL
  SELECT cause, game_id, team_abbr, game_date, source_table, processor_name, item_date, entity_id, FALSE
  FROM nba_processing.incident_links
  WHERE item_date BETWEEN @date_from AND @date_to
),
linked AS (
  SELECT i.item_key, i.entity_id, i.entity_type, i.processor_name, i.item_date, i.status, i.first_seen,
    i.failure_category, e.cause AS kind,
    IF(e.cause = 'NAME_UNRESOLVED', i.entity_id, e.game_id) AS subject,
    IF(e.cause = 'ANALYTICS_GAP', '', e.team) AS team, CAST(NULL AS DATE) AS run_date,
    MIN(e.game_date) AS game_date, MAX(e.game_date) AS last_game_date, LOGICAL_OR(e.current) AS current,
    STRING_AGG(DISTINCT CAST(e.game_date AS STRING), ',') AS game_dates
  FROM filtered AS i
  JOIN evidence AS e
    ON e.source_table = i.source_table AND e.processor_name = i.processor_name AND e.item_date = i.item_date
    AND e.entity_id = i.entity_id
  GROUP BY i.item_key, i.entity_id, i.entity_type, i.processor_name, i.item_date, i.status, i.first_seen,
    i.failure_category, e.cause, IF(e.cause = 'NAME_UNRESOLVED', i.entity_id, e.game_id),
    IF(e.cause = 'ANALYTICS_GAP', '', e.team)
),
member AS (
  SELECT item_key, entity_id, entity_type, processor_name, item_date, failure_category, first_seen, kind, subject,
    team, run_date, game_date, last_game_date, game_dates, current AND status IN UNNEST(@open_statuses) AS is_open
  FROM linked
  UNION ALL
  SELECT i.item_key, i.entity_id, i.entity_type, i.processor_name, i.item_date, i.failure_category, i.first_seen,
    'RUN', i.processor_name, '', i.item_date, CAST(NULL AS DATE), CAST(NULL AS DATE), CAST(NULL AS STRING),
    i.status IN UNNEST(@open_statuses)
  FROM filtered AS i
  WHERE i.correctable_class = 'correctable' AND NOT EXISTS (
    SELECT 1 FROM evidence AS e
    WHERE e.source_table = i.source_table AND e.processor_name = i.processor_name AND e.item_date = i.item_date
      AND e.entity_id = i.entity_id)
)
SELECT 'incident' AS grain, m.kind, m.subject, m.team, m.run_date, MIN(m.game_date) AS game_date,
  MAX(m.last_game_date) AS last_game_date, CAST(NULL AS STRING) AS processor_name, MIN(m.item_date) AS first_date,
  MAX(m.item_date) AS last_date, COUNT(DISTINCT m.item_key) AS items,
  COUNT(DISTINCT IF(m.is_open, m.item_key, NULL)) AS open_items,
  COUNT(DISTINCT IF(m.entity_type = 'PLAYER', m.entity_id, NULL)) AS players,
  COUNT(DISTINCT m.processor_name) AS processors, MIN(m.first_seen) AS first_seen,
  STRING_AGG(DISTINCT COALESCE(m.failure_category, '(none)'), ', ') AS categories,
  STRING_AGG(DISTINCT m.processor_name, ', ') AS processor_names,
  STRING_AGG(DISTINCT IF(m.is_open, m.game_dates, NULL), ',') AS game_dates
FROM member AS m
GROUP BY m.kind, m.subject, m.team, m.run_date
HAVING @settled OR LOGICAL_OR(m.is_open)
UNION ALL
SELECT 'step', m.kind, m.subject, m.team, m.run_date, NULL, NULL, m.processor_name, m.item_date, m.item_date,
  COUNT(DISTINCT m.item_key), COUNT(DISTINCT m.item_key), NULL, NULL, NULL, NULL, NULL, NULL
FROM member AS m
WHERE m.is_open
GROUP BY m.kind, m.subject, m.team, m.run_date, m.processor_name, m.item_date"""


@dataclass(frozen=True)
class IncidentId:
    """``KIND:SUBJECT:TEAM:DATE``: a game (and side), a name (and team) or a processor (and date); ``:`` and ``%``
    in a part are written ``%3A`` and ``%25``."""

    kind: str
    subject: str
    team: str = ""
    run_date: dt.date | None = None

    @property
    def text(self) -> str:
        day = self.run_date.isoformat() if self.run_date else ""
        return ":".join((self.kind, encode_key_part(self.subject), encode_key_part(self.team), day))

    @classmethod
    def parse(cls, text: str) -> IncidentId:
        if not isinstance(text, str):
            raise BadInput("An incident id is text.")
        parts = text.split(":")
        if len(parts) != 4 or parts[0] not in KINDS:
            raise BadInput(
                f"Not an incident id: {text[:120]!r}.",
                f"An incident id reads KIND:SUBJECT:TEAM:DATE, KIND one of {', '.join(KINDS)}.",
            )
        kind, subject, team, day = parts
        run_date = None
        if day:
            try:
                run_date = dt.date.fromisoformat(day)
            except ValueError as exc:
                raise BadInput(f"Bad date {day[:40]!r} in incident id.") from exc
        if (kind == RUN) != (run_date is not None):
            raise BadInput(f"Not an incident id: {text[:120]!r}.", "Only a processor run (RUN) names a date.")
        if not subject or ((kind == "RAW_DATA_GAP") != bool(team) and kind != "NAME_UNRESOLVED"):
            raise BadInput(
                f"Not an incident id: {text[:120]!r}.",
                "A box-score gap names its game and team side, a phase 3 gap its game, a name its player, a run its "
                "processor: copy the id from the list (python -m lib incidents).",
            )
        return cls(kind, decode_key_part(subject), decode_key_part(team), run_date)


def as_date(value: Any) -> dt.date | None:
    """A date from what the engines return for a DATE (a date, a Timestamp, NaT or None)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _words(kind: str, subject: str, team: str, game_date: dt.date | None, run_date: dt.date | None,
           categories: str) -> str:  # fmt: skip
    """The root cause in a few words, the subject first (the table is read from the left)."""
    day = f", {game_date:%b} {game_date.day} {game_date.year}" if game_date else ""
    if kind == "RAW_DATA_GAP":
        return f"No box score: {team} side of game {subject}{day}"
    if kind == "ANALYTICS_GAP":
        return f"No phase 3 rows: game {subject}{day}"
    if kind == "NAME_UNRESOLVED":
        return f"Unresolved {team} name: may be {subject}"
    on = f"{run_date:%b} {run_date.day} {run_date.year}" if run_date else "?"
    return f"{subject} failed on {on}: {categories}"


def _sorted_list(text: Any) -> str:
    return ", ".join(sorted(str(text or "").split(", ")))


def _steps(kind: str, subject: str, team: str, game_dates: list[dt.date], runs: list[tuple[str, dt.date | None]]
           ) -> list[dict[str, Any]]:  # fmt: skip
    """The re-runs an incident needs, in the pipeline's recovery order: the fix at the source, then each stage of
    the processors whose items are still open, for the dates they failed."""
    steps: list[dict[str, Any]] = []
    if kind == "RAW_DATA_GAP":
        steps.append({"stage": "re-scrape", "target": f"box score of game {subject}, {team} side", "processors": [],
                      "dates": [d.isoformat() for d in game_dates]})  # fmt: skip
    if kind == "NAME_UNRESOLVED":
        steps.append({"stage": "registry", "target": f"resolve the {team} name of {subject}", "processors": [],
                      "dates": [d.isoformat() for d in game_dates]})  # fmt: skip
    stages: dict[tuple[int, str], dict[str, set[Any]]] = {}
    if kind in CAUSES:  # phase 3 re-reads the game whatever failed downstream
        stages[(1, "phase 3")] = {"processors": set(), "dates": set(game_dates)}
    for processor, day in runs:
        order = RECOVERY_STEP.get(processor, (6, "predictions"))
        stage = stages.setdefault(order, {"processors": set(), "dates": set()})
        stage["processors"].add(processor)
        stage["dates"].add(day)
    for (_, name), stage in sorted(stages.items()):
        processors = sorted(stage["processors"]) or (list(PHASE3_PROCESSORS[:1]) if name == "phase 3" else [])
        steps.append({"stage": name, "target": ", ".join(processors), "processors": processors,
                      "dates": [d.isoformat() for d in sorted(stage["dates"])]})  # fmt: skip
    return steps


def _steps_text(steps: list[dict[str, Any]]) -> str:
    parts = []
    for n, s in enumerate(steps, start=1):
        days = compact_dates(dt.date.fromisoformat(d) for d in s["dates"])
        parts.append(f"{n} {s['stage']}" + (f" {days}" if days else ""))
    return " · ".join(parts)


def incidents(store: Store, filters: Filters, *, now: dt.datetime, settled: bool = False) -> pd.DataFrame:
    """The incidents behind the view's items, most open items first (then players, then items). Without
    ``settled``, only those with an open item."""
    f = _scope(filters)
    sql = q.relation(store, f, detail=True) + _SQL
    params = {**q.params_of(f), "causes": list(CAUSES), "open_statuses": list(OPEN_STATUSES), "settled": settled}
    frame = store.query(sql, params, label="incidents")
    heads = frame[frame["grain"] == "incident"]
    if heads.empty:
        return pd.DataFrame(columns=COLUMNS)
    steps = frame[frame["grain"] == "step"]
    by_incident: dict[tuple[str, str, str, dt.date | None], list[tuple[str, dt.date | None]]] = {}
    for k, s, t, r, p, d in zip(steps["kind"], steps["subject"], steps["team"], steps["run_date"],
                                steps["processor_name"], steps["first_date"], strict=True):  # fmt: skip
        by_incident.setdefault((str(k), str(s), str(t), as_date(r)), []).append((str(p), as_date(d)))
    rows = []
    for r in heads.to_dict("records"):
        kind, subject, team = str(r["kind"]), str(r["subject"]), str(r["team"])
        run_date, game_date, last_game = as_date(r["run_date"]), as_date(r["game_date"]), as_date(r["last_game_date"])
        runs = by_incident.get((kind, subject, team, run_date), [])
        listed = r["game_dates"] if isinstance(r["game_dates"], str) else ""
        games = sorted(
            {dt.date.fromisoformat(d[:10]) for d in listed.split(",") if d}
            or {d for d in (game_date, last_game) if d is not None}
        )
        open_items, items = int(r["open_items"]), int(r["items"])
        plan = _steps(kind, subject, team, games, runs) if open_items else []
        first_seen = None if pd.isna(r["first_seen"]) else pd.Timestamp(r["first_seen"])
        age = None if first_seen is None else max((now - first_seen.to_pydatetime()).total_seconds(), 0) / 86400
        rows.append({
            "incident_id": IncidentId(kind, subject, team, run_date).text,
            "kind": kind,
            "root_cause": _words(kind, subject, team, game_date, run_date, _sorted_list(r["categories"])),
            "subject": subject, "team": team, "run_date": run_date, "game_date": game_date,
            "last_game_date": last_game, "first_date": as_date(r["first_date"]), "last_date": as_date(r["last_date"]),
            "items": items, "open_items": open_items, "settled_items": items - open_items,
            "players": int(r["players"]), "processors": int(r["processors"]),
            "processor_names": _sorted_list(r["processor_names"]), "categories": _sorted_list(r["categories"]),
            "first_seen": first_seen, "age_days": age,
            "state": "settled" if open_items == 0 else ("open" if open_items == items else "settling"),
            "reruns": _steps_text(plan), "rerun_steps": plan, "game_dates": games,
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=COLUMNS)
    out = out.sort_values(["open_items", "players", "items", "first_date", "incident_id"],
                          ascending=[False, False, False, True, True], kind="stable")  # fmt: skip
    return out.reset_index(drop=True)


_ITEMS_SQL = """,
evidence AS (
  SELECT source_table, processor_name, analysis_date AS item_date, entity_id, TRUE AS current
  FROM nba_processing.failure_missing_games
  WHERE analysis_date BETWEEN @date_from AND @date_to AND verdict = @kind
    AND (@game = '' OR COALESCE(game_id, '') = @game) AND (@team = '' OR COALESCE(team_abbr, '') = @team)
  UNION ALL
  SELECT source_table, processor_name, item_date, entity_id, FALSE
  FROM nba_processing.incident_links
  WHERE item_date BETWEEN @date_from AND @date_to AND cause = @kind
    AND (@game = '' OR game_id = @game) AND (@team = '' OR team_abbr = @team)
),
explained AS (
  SELECT source_table, processor_name, item_date, entity_id, LOGICAL_OR(current) AS current
  FROM evidence
  GROUP BY source_table, processor_name, item_date, entity_id
)
SELECT i.*, e.current AND i.status IN UNNEST(@open_statuses) AS open_in_incident
FROM filtered AS i
JOIN explained AS e
  ON e.source_table = i.source_table AND e.processor_name = i.processor_name AND e.item_date = i.item_date
  AND e.entity_id = i.entity_id
ORDER BY open_in_incident DESC, i.item_date, i.processor_name, i.entity_id"""


def incident_items(store: Store, filters: Filters, incident: IncidentId) -> pd.DataFrame:
    """Every item of one incident (in the filters' dates and tables), with ``open_in_incident``."""
    if incident.kind == RUN:
        assert incident.run_date is not None
        f = _scope(filters).with_(processors=(incident.subject,), correctable=("correctable",),
                                  date_from=incident.run_date, date_to=incident.run_date)  # fmt: skip
        if filters.processors and incident.subject not in filters.processors:
            return pd.DataFrame()
        if (filters.date_from and incident.run_date < filters.date_from) or (
            filters.date_to and incident.run_date > filters.date_to
        ):
            return pd.DataFrame()
        sql = q.relation(store, f) + ",\nlinked AS (" + _LINKED_KEYS + ")\n" + _RUN_ITEMS
        frame = store.query(sql, {**q.params_of(f), "causes": list(CAUSES),
                                  "open_statuses": list(OPEN_STATUSES)}, label="incidents")  # fmt: skip
        return q.with_keys(frame.drop(columns=["item_key"], errors="ignore"))
    f = _scope(filters)
    if incident.kind == "NAME_UNRESOLVED":
        f = f.with_(entity_exact=incident.subject, entity="")
    params = {
        **q.params_of(f), "kind": incident.kind, "open_statuses": list(OPEN_STATUSES),
        "game": "" if incident.kind == "NAME_UNRESOLVED" else incident.subject,  # a name: any game of his side
        "team": incident.team,
    }  # fmt: skip
    sql = q.relation(store, f) + _ITEMS_SQL
    frame = store.query(sql, params, label="incidents")
    return q.with_keys(frame.drop(columns=["item_key"], errors="ignore"))


_LINKED_KEYS = """
  SELECT DISTINCT source_table, processor_name, analysis_date AS item_date, entity_id
  FROM nba_processing.failure_missing_games
  WHERE analysis_date BETWEEN @date_from AND @date_to AND verdict IN UNNEST(@causes)
  UNION DISTINCT
  SELECT source_table, processor_name, item_date, entity_id
  FROM nba_processing.incident_links
  WHERE item_date BETWEEN @date_from AND @date_to"""

_RUN_ITEMS = """
SELECT i.*, i.status IN UNNEST(@open_statuses) AS open_in_incident
FROM filtered AS i
LEFT JOIN linked AS l
  ON l.source_table = i.source_table AND l.processor_name = i.processor_name AND l.item_date = i.item_date
  AND l.entity_id = i.entity_id
WHERE l.entity_id IS NULL
ORDER BY open_in_incident DESC, i.entity_id"""


def summary(frame: pd.DataFrame) -> dict[str, Any]:
    """Counts over the incidents listed: how many, how many open items they hold, the biggest."""
    if frame.empty:
        return {"incidents": 0, "open": 0, "biggest": None}
    top = frame.iloc[0]
    return {
        "incidents": len(frame),
        "open": int((frame["open_items"] > 0).sum()),
        "biggest": {"incident_id": top["incident_id"], "root_cause": top["root_cause"],
                    "open_items": int(top["open_items"])},
    }  # fmt: skip
