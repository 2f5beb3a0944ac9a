"""The shared sidebar filters. Each widget is bound to a URL query parameter (its key), so any view
can be shared by copying the address bar. Widget keys are the parameter names below."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from lib.model import (
    CORRECTABLE_CHOICES,
    EXPECTED_CATEGORIES,
    UNCLASSIFIED,
    FailureType,
    Filters,
    ResolutionStatus,
    SourceTable,
)
from lib.store import Store
from ui import data
from ui.widgets import md

# Query parameter / session-state keys of the shared filters.
K_FROM, K_TO = "from", "to"
K_TABLE, K_PROCESSOR, K_CATEGORY = "table", "processor", "category"
K_TYPE, K_CORRECTABLE, K_STATUS = "type", "correctable", "status"
K_ENTITY, K_HIDE_EXPECTED, K_DISAGREE = "entity", "hide_expected", "disagree"
FILTER_KEYS = (
    K_FROM,
    K_TO,
    K_TABLE,
    K_PROCESSOR,
    K_CATEGORY,
    K_TYPE,
    K_CORRECTABLE,
    K_STATUS,
    K_ENTITY,
    K_HIDE_EXPECTED,
    K_DISAGREE,
)

_TABLE_LABEL = {t.value: f"Phase {t.phase} · {t.value}" for t in SourceTable}


def current() -> Filters:
    """The filters the sidebar drew on this run (the entry point draws it before any page)."""
    value = st.session_state.get("app_filters")
    return value if isinstance(value, Filters) else Filters()


def switch_page_keeping_filters(page: str) -> None:
    """Go to another page keeping the filters.

    The filter parameters are bound to widgets, which Streamlit refuses to clear (the default of
    ``switch_page``) or to set directly; an empty mapping leaves them to the widgets, which write
    them back to the URL on the next page's run.
    """
    st.switch_page(page, query_params={})


def drill_down(**values: list[str]) -> None:
    """Narrow the shared filters (called from chart callbacks, before the widgets are drawn)."""
    for key, value in values.items():
        st.session_state[key] = value


def sidebar(store: Store) -> Filters:
    b = data.bounds(store)
    default = b.default_range() or (dt.date.today() - dt.timedelta(days=29), dt.date.today())
    lo = b.first_date or default[0]
    hi = b.last_date or default[1]

    side = st.sidebar
    side.markdown("### Filters")
    _repair_dates(lo, hi)
    date_from = side.date_input(
        "From", value=default[0], min_value=lo, max_value=hi, key=K_FROM, bind="query-params", format="YYYY-MM-DD"
    )
    date_to = side.date_input(
        "To", value=default[1], min_value=lo, max_value=hi, key=K_TO, bind="query-params", format="YYYY-MM-DD"
    )
    if isinstance(date_from, dt.date) and isinstance(date_to, dt.date) and date_from > date_to:
        side.warning("**From** is after **To**: showing the range the other way round.")
        date_from, date_to = date_to, date_from

    scope = Filters(date_from=date_from or None, date_to=date_to or None)
    data.prepare(store, scope)
    options = data.choices(store, scope)
    _repair_choices(
        {
            K_TABLE: ([t.value for t in SourceTable], "no such failure table"),
            K_PROCESSOR: (list(options.processors), "no failure of this processor in the date range"),
            K_CATEGORY: (list(options.categories), "no failure of this category in the date range"),
            K_TYPE: ([t.value for t in FailureType] + [UNCLASSIFIED], "no such failure type"),
            K_CORRECTABLE: (list(CORRECTABLE_CHOICES), "not one of " + ", ".join(CORRECTABLE_CHOICES)),
            K_STATUS: ([s.value for s in ResolutionStatus], "no such status"),
        }
    )
    _repair_switches_and_text()
    _show_ignored(side)

    # No format_func: Streamlit would put the formatted label in the URL, and a link naming the table
    # (``?table=analytics_failures``) would select nothing.
    tables = side.multiselect(
        "Table / phase",
        [t.value for t in SourceTable],
        help=" · ".join(_TABLE_LABEL.values()),
        key=K_TABLE,
        bind="query-params",
        placeholder="All tables",
    )
    processors = side.multiselect(
        "Processor",
        _with_selected(options.processors, K_PROCESSOR),
        key=K_PROCESSOR,
        bind="query-params",
        placeholder="All processors",
    )
    categories = side.multiselect(
        "Failure category",
        _with_selected(options.categories, K_CATEGORY),
        key=K_CATEGORY,
        bind="query-params",
        placeholder="All categories",
    )
    types = side.multiselect(
        "Failure type",
        [t.value for t in FailureType] + [UNCLASSIFIED],
        key=K_TYPE,
        bind="query-params",
        placeholder="All types",
    )
    correctable = side.multiselect(
        "Correctable",
        list(CORRECTABLE_CHOICES),
        key=K_CORRECTABLE,
        bind="query-params",
        placeholder="Any",
    )
    statuses = side.multiselect(
        "Resolution status",
        [s.value for s in ResolutionStatus],
        key=K_STATUS,
        bind="query-params",
        placeholder="Any status",
    )
    entity = side.text_input(
        "Entity contains",
        key=K_ENTITY,
        bind="query-params",
        max_chars=MAX_ENTITY,
        placeholder="player lookup, team, game id…",
    )
    hide_expected = side.toggle(
        "Set aside expected failures",
        value=True,
        key=K_HIDE_EXPECTED,
        bind="query-params",
        help="Hides items whose category operators treat as expected (early season, bootstrap): "
        + ", ".join(EXPECTED_CATEGORIES),
    )
    disagree = side.toggle(
        "Only where we disagree with the pipeline",
        value=False,
        key=K_DISAGREE,
        bind="query-params",
        help="Items the dashboard judged whose verdict or correctability differs from the one the pipeline's own "
        "classifier wrote (shown beside ours as 'Pipeline said').",
    )
    if side.button("Clear filters", key="filters_clear", icon=":material/filter_alt_off:", width="stretch"):
        for key in FILTER_KEYS:
            st.session_state.pop(key, None)
        st.rerun()

    return Filters(
        date_from=date_from or None,
        date_to=date_to or None,
        tables=tuple(tables),
        processors=tuple(processors),
        categories=tuple(categories),
        failure_types=tuple(types),
        correctable=tuple(correctable),
        statuses=tuple(statuses),
        entity=(entity or "").strip(),
        hide_expected=bool(hide_expected),
        disagree=bool(disagree),
    )


# -- values from a link that cannot be used --------------------------------------------------------
# Streamlit drops a bound widget's URL value it cannot show, silently, and a multiselect drops all of its
# values when one is unknown. Before the widgets are drawn, the link's values are checked here: the usable
# ones are kept (set as the widgets' state), the others are named in the sidebar with the reason.
K_IGNORED = "filters_ignored_from_link"
MAX_SHOWN = 60  # characters of an ignored value shown back


def _raw(key: str) -> list[str]:
    try:
        return [v for v in st.query_params.get_all(key) if v is not None]
    except Exception:  # a malformed query string is no reason to fail the page
        return []


def _note(key: str, value: str, why: str) -> None:
    shown = value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "…"
    notes: list[str] = st.session_state.setdefault(K_IGNORED, [])
    line = f"`{key}` = “{md(shown)}”: {why}"
    if line not in notes:
        notes.append(line)


def _repair_choices(allowed: dict[str, tuple[list[str], str]]) -> None:
    for key, (choices, why) in allowed.items():
        parts = _raw(key)
        raw = [v for part in parts for v in ([part] if part in choices else part.split(","))]
        if not raw:
            continue
        usable = [v for v in raw if v in choices or (key in (K_PROCESSOR, K_CATEGORY) and v in _chosen(key))]
        unusable = [v for v in raw if v not in usable]
        if not unusable:
            if len(raw) != len(parts):  # comma-joined (status=UNRESOLVED,REGRESSED): Streamlit would drop it whole
                st.session_state[key] = list(dict.fromkeys(usable))
            continue
        for value in unusable:
            _note(key, value, why)
        st.session_state[key] = list(dict.fromkeys(usable))


def _chosen(key: str) -> list[str]:
    value = st.session_state.get(key)
    return list(value) if isinstance(value, (list, tuple)) else []


def _repair_dates(lo: dt.date, hi: dt.date) -> None:
    for key in (K_FROM, K_TO):
        raw = _raw(key)
        if not raw:
            continue
        try:
            day = dt.date.fromisoformat(raw[-1].strip())
        except ValueError:
            _note(key, raw[-1], "not a YYYY-MM-DD date; the default range is shown")
            continue
        if day < lo or day > hi:
            edge = lo if day < lo else hi
            _note(key, raw[-1], f"outside the data ({lo} to {hi}); {edge} is used")
            st.session_state[key] = edge


#: The longest "Entity contains" text searched for (the rest of a longer one from a link is not).
MAX_ENTITY = 200


def _repair_switches_and_text() -> None:
    """A switch's value that is neither true nor false (Streamlit drops it), and an entity text longer than the
    box takes (Streamlit cuts it), are named, as every other value a link brings and the page cannot use."""
    for key, default in ((K_HIDE_EXPECTED, "on"), (K_DISAGREE, "off")):
        raw = _raw(key)
        if raw and raw[-1] != "" and raw[-1].lower() not in ("true", "false"):
            _note(key, raw[-1], f"not true or false; the switch stays {default}")
    raw = _raw(K_ENTITY)
    if raw and len(raw[-1]) > MAX_ENTITY:
        _note(K_ENTITY, raw[-1], f"{len(raw[-1]):,} characters; only the first {MAX_ENTITY} are searched for")


def _show_ignored(side: Any) -> None:
    notes = st.session_state.get(K_IGNORED) or []
    if not notes:
        return
    box = side.container(border=True)
    box.warning("**Ignored from the link:**\n\n" + "\n\n".join(f"- {n}" for n in notes), icon=":material/link_off:")
    if box.button("Dismiss", key="filters_ignored_dismiss", width="stretch"):
        st.session_state.pop(K_IGNORED, None)
        st.rerun()


def _with_selected(options: tuple[str, ...], key: str) -> list[str]:
    """Keep values chosen elsewhere (a chart click) selectable even if the date range lacks them."""
    chosen = st.session_state.get(key) or []
    return list(options) + [v for v in chosen if v not in options]


def describe(filters: Filters) -> str:
    parts = []
    if filters.date_from and filters.date_to:
        parts.append(f"{filters.date_from:%b %d, %Y} – {filters.date_to:%b %d, %Y}")
    for label, values in (
        ("tables", filters.tables),
        ("processors", filters.processors),
        ("categories", filters.categories),
        ("types", filters.failure_types),
        ("correctable", filters.correctable),
        ("status", filters.statuses),
    ):
        if values:
            parts.append(f"{label}: {', '.join(values)}")
    if filters.entity:
        parts.append(f"entity contains “{filters.entity}”")
    if filters.entity_exact is not None:
        parts.append(f"entity “{filters.entity_exact}”" if filters.entity_exact else "items without an entity")
    if filters.disagree:
        parts.append("only where we disagree with the pipeline")
    parts.append("expected failures set aside" if filters.hide_expected else "expected failures included")
    return " · ".join(parts)
