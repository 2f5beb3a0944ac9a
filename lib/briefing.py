"""The morning briefing: what changed since a comparison point, with KPIs then and now.

One grouped query counts every item in range at three instants (now, the comparison point ``since``, and
the point as far before it, ``before``): from the item index and its change log where the index can be kept
(lib/store/changes.py: aggregates, whatever changed), else rebuilt from the append-only history
(lib/store/history.py), the definition the change log is tested against. The panel's counts, their deltas
against the period before and the KPIs at each instant are all cut from that one small frame. An item counts
in a change the way the failure list's ``changed`` filter selects it, so each count's link opens exactly those
items.

Filters on the item's state (status, failure type, correctability, the expected categories) apply at the
later instant of each comparison: "settled since yesterday" with a status filter of UNRESOLVED is empty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from lib.access import SYSTEM, NotAllowed
from lib.errors import BadInput

__all__ = ["BadInput", "Briefing", "NotAllowed", "brief", "comparison_point", "last_visit", "record_visit"]
from lib.model import CHANGE_KINDS, OPEN_STATUSES, SETTLED_STATUSES, UNCLASSIFIED, Actor, Filters, Kpis
from lib.store import changes
from lib.store import queries as q
from lib.store.base import Store
from lib.store.history import history_ctes

#: The instants every briefing query names, as parameters.
_THEN, _BEFORE = "since_at", "before_at"
DEFAULT_HOURS = 24


@dataclass(frozen=True)
class Briefing:
    since: dt.datetime
    now: dt.datetime
    before: dt.datetime
    #: Items per change kind (lib.model.CHANGE_KINDS) from ``since`` to ``now``, and in the period before.
    counts: dict[str, int]
    previous: dict[str, int]
    kpis_now: Kpis
    kpis_then: Kpis
    #: Items settled since ``since``: who made their latest change, and to what.
    settled_by: pd.DataFrame = field(repr=False)
    #: Items whose verdict changed since ``since``: from, to, items.
    reclassified: pd.DataFrame = field(repr=False)

    def delta(self, kind: str) -> int:
        return self.counts[kind] - self.previous[kind]


def _cube(store: Store, filters: Filters, now: dt.datetime, since: dt.datetime, before: dt.datetime) -> pd.DataFrame:
    scope = filters.with_(categories=(), failure_types=(), correctable=(), statuses=(), changed="",
                          changed_since=None)  # fmt: skip
    params = {**q.params_of(scope), _THEN: since, _BEFORE: before}
    if q.indexed(store, scope):
        # From the index and its change log: aggregates, whatever changed and whenever (lib/store/changes.py).
        cube = store.query(changes.cube_sql(scope), params, label="briefing")
    else:
        cube = store.query(_rebuilt_sql(scope), params, label="briefing")
    cube["is_expected"] = cube["is_expected"].astype(bool)
    cube["exists_now"] = True
    for p in (_THEN, _BEFORE):
        cube[f"exists_{p}"] = cube[f"exists_{p}"].fillna(False).astype(bool)
    return cube


def _rebuilt_sql(scope: Filters) -> str:
    """The cube rebuilt from the failure rows and the append-only history (lib/store/history.py): where the index
    cannot be kept, and the reference the change log is tested against."""
    instants = [_THEN, _BEFORE]
    states = ", ".join(f"h.exists_{p}, h.status_{p}, h.type_{p}, h.correctable_{p}" for p in instants)
    return (
        q.base_sql(scope, rows=True)
        + history_ctes(instants)
        + f"""
SELECT l.failure_category, l.is_expected, l.status AS status_now, l.failure_type_label AS type_now,
  l.correctable_class AS correctable_now, {states}, h.last_actor,
  COUNT(*) AS items, CAST(SUM(l.occurrences) AS INT64) AS occurrences_now,
  CAST(SUM(h.occurrences_{_THEN}) AS INT64) AS occurrences_{_THEN},
  CAST(SUM(h.occurrences_{_BEFORE}) AS INT64) AS occurrences_{_BEFORE}
FROM labelled AS l
JOIN item_history AS h
  ON h.source_table = l.source_table AND h.processor_name = l.processor_name AND h.item_date = l.item_date
  AND h.entity_id = l.entity_id
GROUP BY l.failure_category, l.is_expected, l.status, l.failure_type_label, l.correctable_class, {states},
  h.last_actor"""
    )


def _matching(cube: pd.DataFrame, filters: Filters, at: str, *, hide_expected: bool) -> pd.Series:
    """Rows of the cube matching the filters on the items' state at instant ``at`` (now, since_at, ...)."""
    keep = cube[f"exists_{at}"].copy()
    for values, column in (
        (filters.categories, "failure_category"),
        (filters.failure_types, f"type_{at}"),
        (filters.correctable, f"correctable_{at}"),
        (filters.statuses, f"status_{at}"),
    ):
        if values:
            keep &= cube[column].isin(values)
    if hide_expected:
        keep &= ~cube["is_expected"]
    return keep


def _kpis(cube: pd.DataFrame, filters: Filters, at: str) -> Kpis:
    base = cube[_matching(cube, filters, at, hide_expected=False)]
    shown = base[~base["is_expected"]] if filters.hide_expected else base

    def items(frame: pd.DataFrame) -> int:
        return int(frame["items"].sum())

    return Kpis(
        items=items(shown),
        occurrences=int(shown[f"occurrences_{at}"].sum()),
        unresolved=items(shown[shown[f"status_{at}"] == "UNRESOLVED"]),
        correctable=items(shown[shown[f"correctable_{at}"] == "correctable"]),
        uncorrectable=items(shown[shown[f"correctable_{at}"] == "uncorrectable"]),
        unclassified=items(shown[shown[f"type_{at}"] == UNCLASSIFIED]),
        expected=items(base[base["is_expected"]]),
        all_items=items(base),
    )


def _flags(cube: pd.DataFrame, a: str, b: str) -> dict[str, pd.Series]:
    """Which rows of the cube changed each way from instant ``a`` to instant ``b`` (see history.change_condition)."""
    exists_a = cube[f"exists_{a}"]
    status_a, status_b = cube[f"status_{a}"].fillna(""), cube[f"status_{b}"].fillna("")
    open_b = status_b.isin(OPEN_STATUSES) & (cube[f"correctable_{b}"] == "correctable")
    was_open = exists_a & status_a.isin(OPEN_STATUSES) & (cube[f"correctable_{a}"] == "correctable")
    return {
        "new": ~exists_a,
        "regressed": (status_b == "REGRESSED") & (status_a != "REGRESSED"),
        "settled": status_b.isin(SETTLED_STATUSES) & ~status_a.isin(SETTLED_STATUSES),
        "reclassified": exists_a
        & ((cube[f"type_{a}"] != cube[f"type_{b}"]) | (cube[f"correctable_{a}"] != cube[f"correctable_{b}"])),
        "new_correctable": open_b & ~was_open,
    }


def _counts(cube: pd.DataFrame, filters: Filters, a: str, b: str) -> dict[str, int]:
    scope = _matching(cube, filters, b, hide_expected=filters.hide_expected)
    return {kind: int(cube.loc[scope & flag, "items"].sum()) for kind, flag in _flags(cube, a, b).items()}


def comparison_point(now: dt.datetime, since: dt.datetime | None = None) -> dt.datetime:
    """``since`` checked (in the past, aware), or 24 hours before ``now``."""
    if since is None:
        return now - dt.timedelta(hours=DEFAULT_HOURS)
    if since.tzinfo is None:
        raise BadInput("The comparison point needs a time zone (UTC unless it says).")
    if since >= now:
        raise BadInput(f"The comparison point {since:%Y-%m-%d %H:%M} UTC is not in the past.")
    return since


def brief(store: Store, filters: Filters, *, now: dt.datetime, since: dt.datetime | None = None) -> Briefing:
    """What changed from ``since`` (default: 24 hours ago) to ``now`` for the items the filters cover."""
    since = comparison_point(now, since)
    before = max(since - (now - since), dt.datetime(1970, 1, 2, tzinfo=dt.UTC))
    cube = _cube(store, filters, now, since, before)
    if cube.empty:
        empty = dict.fromkeys(CHANGE_KINDS, 0)
        frame = pd.DataFrame(columns=["who", "status", "items"])
        return Briefing(since, now, before, empty, dict(empty), Kpis(), Kpis(), frame,
                        pd.DataFrame(columns=["from", "to", "items"]))  # fmt: skip
    counts = _counts(cube, filters, _THEN, "now")
    previous = _counts(cube, filters, _BEFORE, _THEN)
    scope = _matching(cube, filters, "now", hide_expected=filters.hide_expected)
    flags = _flags(cube, _THEN, "now")
    settled = cube[scope & flags["settled"]]
    settled_by = pd.DataFrame(
        settled.assign(who=settled["last_actor"].fillna("(the pipeline)"), status=settled["status_now"])
        .groupby(["who", "status"], as_index=False)["items"]
        .sum()
    ).sort_values(["items", "who"], ascending=[False, True], ignore_index=True)
    changed = cube[scope & flags["reclassified"]]
    reclassified = pd.DataFrame(
        changed.assign(**{"from": changed[f"type_{_THEN}"], "to": changed["type_now"]})
        .groupby(["from", "to"], as_index=False)["items"]
        .sum()
    ).sort_values(["items", "from", "to"], ascending=[False, True, True], ignore_index=True)
    return Briefing(
        since=since,
        now=now,
        before=before,
        counts=counts,
        previous=previous,
        kpis_now=_kpis(cube, filters, "now"),
        kpis_then=_kpis(cube, filters, _THEN),
        settled_by=settled_by,
        reclassified=reclassified,
    )


# -- "since my last visit" --------------------------------------------------------------------------

_LAST_VISIT = """
SELECT MAX(visited_at) AS at FROM nba_processing.triage_visits
WHERE operator = @operator AND visited_at < @before AND DATE(visited_at) BETWEEN @day_from AND @day_to"""

MAX_VISIT_LOOKBACK_DAYS = 400
#: Opening the dashboard again within this time (a reload, a second tab) is the same visit.
VISIT_GAP = dt.timedelta(hours=1)


def last_visit(store: Store, operator: str, *, before: dt.datetime) -> dt.datetime | None:
    """When ``operator`` last opened the dashboard before ``before`` (within about a year), if ever."""
    if "nba_processing.triage_visits" not in store.existing_tables():
        return None
    params = {
        "operator": operator,
        "before": before,
        "day_from": (before - dt.timedelta(days=MAX_VISIT_LOOKBACK_DAYS)).date(),
        "day_to": before.date(),
    }
    value = store.query(_LAST_VISIT, params, label="last-visit").iloc[0]["at"]
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime().astimezone(dt.UTC)


def record_visit(store: Store, actor: Actor | None, *, at: dt.datetime) -> None:
    """Remember that this person opened the dashboard (viewers too: only ``system`` and nobody are refused)."""
    name = actor.name.strip() if isinstance(actor, Actor) and isinstance(actor.name, str) else ""
    if not name or name.casefold() == SYSTEM.name:
        raise NotAllowed("Only a named person has visits to remember.", "Sign in, or set your operator name.")
    store.init_schema(pipeline_tables=False)
    with store.touching(None):  # a visit changes no item of any date
        store.insert_frame(
            "nba_processing.triage_visits",
            pd.DataFrame({"operator": [name], "visited_at": [pd.Timestamp(at).tz_convert("UTC")]}),
            label="visit",
        )
