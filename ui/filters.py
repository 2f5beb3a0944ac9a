"""The shared sidebar filters. Each widget is bound to a URL query parameter (its key), so any view
can be shared by copying the address bar. Widget keys are the parameter names below."""

from __future__ import annotations

import datetime as dt

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

# Query parameter / session-state keys of the shared filters.
K_FROM, K_TO = "from", "to"
K_TABLE, K_PROCESSOR, K_CATEGORY = "table", "processor", "category"
K_TYPE, K_CORRECTABLE, K_STATUS = "type", "correctable", "status"
K_ENTITY, K_HIDE_EXPECTED = "entity", "hide_expected"
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
    options = data.choices(store, scope)

    tables = side.multiselect(
        "Table / phase",
        [t.value for t in SourceTable],
        format_func=lambda v: _TABLE_LABEL.get(v, v),
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
        max_chars=200,
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
    )


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
    parts.append("expected failures set aside" if filters.hide_expected else "expected failures included")
    return " · ".join(parts)
