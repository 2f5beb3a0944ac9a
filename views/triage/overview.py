"""Overview: how many failure items, of what kind, where, and since when."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib.model import UNCLASSIFIED, SourceTable
from lib.store import queries as q
from ui import actions, context, data, filters, identity, resolve
from ui import briefing as briefing_panel
from ui.widgets import TYPE_COLOURS, TYPE_ORDER, cell_count, fmt_int, kpi_row, md, tile

K_MATRIX = "overview_matrix"
K_TREND = "overview_trend"
K_GOTO = "overview_goto_list"
#: Youngest to oldest: from calm to alarming.
AGE_COLOURS = ["#9cc9a8", "#c7d98b", "#f2d272", "#f5a85b", "#e0683a", "#a8321a", "#999999"]
now_minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)

if st.session_state.pop(K_GOTO, False):
    filters.switch_page_keeping_filters("views/triage/failures.py")

store = context.get_store()
f = filters.current()

st.title("Failure overview")
st.caption(md(filters.describe(f)))
undated = context.guarded(lambda: data.bounds(store)).undated
if undated:
    st.warning(
        f"**{fmt_int(undated)} failure row(s) have no date** (the date column is NULL, which the pipeline's schema "
        "forbids): they belong to no item and no page counts them. Find them with `WHERE analysis_date IS NULL` "
        "(`prediction_date` for predictions) and fix or delete them at the source.",
        icon=":material/event_busy:",
    )

actor = identity.current_actor()
b = context.guarded(lambda: briefing_panel.panel(store, f, actor))
k = context.guarded(lambda: data.kpis(store, f))
hidden = k.expected if f.hide_expected else 0


def _vs_then(name: str) -> str | None:
    if b is None:
        return None
    change = getattr(b.kpis_now, name) - getattr(b.kpis_then, name)
    return f"{change:+,} vs then" if change else "same as then"


neither = max(k.items - k.correctable - k.uncorrectable, 0)
items_help = (
    f"Failure items shown ({fmt_int(k.occurrences)} rows recorded for them). {fmt_int(neither)} of them are in "
    "neither Correctable nor Not correctable: their correctability is unknown (not judged yet, or judged UNKNOWN)"
)
permanent_help = "Judged permanent: no re-run brings the data (the player did not play, too little history, …)"
kpi_row(
    [
        tile("Items", k.items, items_help),
        tile("Unresolved", k.unresolved, "Items whose status is UNRESOLVED (or NULL)"),
        tile("Correctable", k.correctable, "Judged fixable: re-ingesting or re-processing brings the data"),
        tile("Not correctable", k.uncorrectable, permanent_help),
        tile("Unclassified", k.unclassified, "No failure_type yet"),
        (
            "Expected share",
            f"{k.expected_share:.0%}",
            f"{fmt_int(k.expected)} of {fmt_int(k.all_items)} items have a category operators treat as expected"
            + (f"; {fmt_int(hidden)} are set aside" if hidden else ""),
        ),
    ],
    [_vs_then(n) for n in ("items", "unresolved", "correctable", "uncorrectable", "unclassified")] + [None],
)
resolve.show_toast()
actions.classify_panel(store, f, actor)
actions.suggestions(store, f, actor)
if hidden:
    st.caption(
        f":material/visibility_off: {fmt_int(hidden)} expected items (INSUFFICIENT_DATA and the like) are set aside: "
        "turn off **Set aside expected failures** in the sidebar to include them."
    )


def _open_cell() -> None:
    points = st.session_state.get(K_MATRIX, {}).get("selection", {}).get("points", [])
    if points:
        point = points[0]
        filters.drill_down(**{filters.K_PROCESSOR: [str(point["y"])], filters.K_CATEGORY: [str(point["x"])]})
        st.session_state[K_GOTO] = True


def _open_day() -> None:
    points = st.session_state.get(K_TREND, {}).get("selection", {}).get("points", [])
    if points:
        point = points[0]
        custom = point.get("customdata") or [None]
        day = dt.date.fromisoformat(str(point["x"])[:10])
        # A week's or a month's bar opens its days within the range shown (a month may start before it).
        last = dt.date.fromisoformat(str(custom[2])[:10]) if len(custom) > 2 and custom[2] else day
        first, last = max(day, f.date_from or day), min(last, f.date_to or last)
        failure_type = point.get("legendgroup") or custom[0]
        changes: dict[str, object] = {filters.K_FROM: first, filters.K_TO: last}
        if failure_type:
            changes[filters.K_TYPE] = [str(failure_type)]
        for key, value in changes.items():
            st.session_state[key] = value
        st.session_state[K_GOTO] = True


def _matrix_figure(m: pd.DataFrame) -> go.Figure:
    """Items by processor and category: a cell per pair, its colour and number the items."""
    phase_of = {p: int(ph) for p, ph in zip(m["processor_name"], m["phase"], strict=True)}
    processors = sorted(phase_of, key=lambda p: (phase_of[p], p), reverse=True)
    totals = m.groupby("failure_category")["items"].sum().sort_values(ascending=False)
    categories = list(totals.index)
    row_px = 50
    height = max(300, row_px * len(processors) + 170)
    size = max(16, min(row_px - 6, int(600 / max(len(categories), 1)) - 6))
    fig = go.Figure(
        go.Scatter(
            x=m["failure_category"],
            y=m["processor_name"],
            mode="markers+text",
            text=[cell_count(int(v)) for v in m["items"]],
            textfont={"size": 11, "color": "#1f2430"},
            customdata=m[["occurrences", "items"]].to_numpy(),
            marker={
                "symbol": "square",
                "size": size,
                "color": m["items"].clip(lower=1).map(float).pipe(lambda s: s.apply(lambda v: v**0.5)),
                "colorscale": [[0, "#fde8d7"], [0.5, "#f59c5b"], [1, "#c43c0f"]],
                "line": {"width": 0},
            },
            hovertemplate=(
                "<b>%{y}</b><br>%{x}<br>%{customdata[1]:,} items · %{customdata[0]:,} rows<extra>click to list</extra>"
            ),
        )
    )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={
            "categoryorder": "array",
            "categoryarray": categories,
            "side": "top",
            "tickangle": -35,
            "showgrid": False,
        },
        yaxis={"categoryorder": "array", "categoryarray": processors, "showgrid": False},
        plot_bgcolor="white",
        dragmode=False,
    )
    return fig


_PERIOD_WORD = {"day": "date", "week": "week", "month": "month"}
#: How a bar's period reads on hover.
_PERIOD_HOVER = {"day": "%{x|%Y-%m-%d}", "week": "week of %{x|%Y-%m-%d}", "month": "%{x|%B %Y}"}


def _period(t: pd.DataFrame) -> str:
    return q.trend_period(min(t["item_date"]), max(t["item_date"])) if len(t) else "day"


def _trend_figure(t: pd.DataFrame) -> go.Figure:
    """Items per date (per week or month over a long range), stacked by failure type."""
    hover = _PERIOD_HOVER[_period(t)]
    t = t.assign(item_date=pd.to_datetime(t["item_date"]), period_end=t["period_end"].astype(str))
    fig = go.Figure()
    present = {str(v) for v in t["failure_type"].dropna().unique()}  # once: a whole history is thousands of rows
    for failure_type in [ft for ft in TYPE_ORDER if ft in present] + sorted(present - set(TYPE_ORDER)):
        part = t[t["failure_type"] == failure_type]
        fig.add_bar(
            x=part["item_date"],
            y=part["items"],
            name=failure_type,
            legendgroup=failure_type,
            marker_color=TYPE_COLOURS.get(failure_type, "#999999"),
            customdata=part[["failure_type", "occurrences", "period_end"]].to_numpy(),
            hovertemplate=hover + "<br><b>%{customdata[0]}</b>: %{y:,} items (%{customdata[1]:,} rows)<extra></extra>",
        )
    fig.update_layout(
        barmode="stack",
        height=340,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        xaxis={"title": None},
        yaxis={"title": "items"},
        dragmode=False,
    )
    return fig


def _age_figure(ages: pd.DataFrame) -> go.Figure:
    """Open items by how long they have waited."""
    age_fig = go.Figure(
        go.Bar(
            x=ages["items"],
            y=ages["age"],
            orientation="h",
            marker_color=AGE_COLOURS[: len(ages)],
            text=[fmt_int(int(v)) for v in ages["items"]],
            textposition="auto",
            hovertemplate="%{y}: %{x:,} open items<extra></extra>",
        )
    )
    age_fig.update_layout(
        height=230,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={"autorange": "reversed", "title": None},
        xaxis={"title": "open items"},
        plot_bgcolor="white",
        dragmode=False,
    )
    return age_fig


left, right = st.columns([3, 1.2], gap="large")

with left:
    st.subheader("Items by processor and category")
    m = context.guarded(lambda: data.matrix(store, f))
    if m.empty:
        st.info("No failure items match these filters.", icon=":material/check_circle:")
    else:
        fig = data.figure(store, f, "overview-matrix", lambda: _matrix_figure(m))
        st.plotly_chart(
            fig, key=K_MATRIX, on_select=_open_cell, selection_mode="points", config={"displayModeBar": False}
        )
        st.caption("Click a cell to open those items in the failure list. Colour and number: items.")

with right:
    st.subheader("By phase")
    if not m.empty:
        names = {t.phase: f"{t.phase} · {t.value.removesuffix('_failures')}" for t in SourceTable}
        by_phase = m.groupby("phase", as_index=False)[["items", "occurrences"]].sum().sort_values("phase")
        by_phase.insert(0, "table", by_phase["phase"].map(names))
        st.dataframe(
            by_phase[["table", "items"]],
            hide_index=True,
            key="overview_phase_table",
            column_config={
                "table": st.column_config.TextColumn("Phase · table", width=105),  # the column is narrow at 1280 px
                "items": st.column_config.ProgressColumn(
                    "Items", format="%d", min_value=0, max_value=int(by_phase["items"].max() or 1), width=105
                ),
            },
        )
        st.caption(
            f"{fmt_int(int(m['occurrences'].sum()))} rows recorded for these {fmt_int(int(m['items'].sum()))} items "
            "(reruns and duplicates collapse into one item)."
        )
    st.subheader("Open backlog by age")
    ages = context.guarded(lambda: data.backlog_age(store, f, now=now_minute))
    if int(ages["items"].sum()) == 0:
        st.caption("No open items: nothing is waiting.")
    else:
        age_fig = data.figure(store, f, "overview-age", lambda: _age_figure(ages), now_minute)
        st.plotly_chart(age_fig, key="overview_backlog_age", config={"displayModeBar": False})
        waiting = int(ages["items"].sum())
        st.caption(f"{fmt_int(waiting)} open items: {fmt_int(k.unresolved)} UNRESOLVED (the tile above) and "
                   f"{fmt_int(max(waiting - k.unresolved, 0))} REGRESSED or INVESTIGATING.")  # fmt: skip
        st.page_link("views/triage/settling.py", label="How fast items get settled", icon=":material/timer:")
t = context.guarded(lambda: data.trend(store, f))
word = _PERIOD_WORD[_period(t)]
st.subheader(f"Items per {word}, by failure type")
if t.empty:
    st.info("Nothing to chart for these filters.")
else:
    fig = data.figure(store, f, "overview-trend", lambda: _trend_figure(t))
    st.plotly_chart(fig, key=K_TREND, on_select=_open_day, selection_mode="points", config={"displayModeBar": False})
    st.caption(f"Click a bar to list that {word}'s items of that type."
               + ("" if word == "date" else f" A bar per {word}: the range is too long for one per date."))  # fmt: skip

st.subheader("Our verdicts and the pipeline's")
dis = context.guarded(lambda: data.disagreement(store, f))
if dis.empty:
    st.caption("No items in these filters.")
else:
    unjudged = int((dis["items"] - dis["judged"])[dis["failure_type"] != UNCLASSIFIED].sum())
    total_judged, total_dis = int(dis["pipeline_judged"].sum()), int(dis["disagree"].sum())
    st.dataframe(
        dis.assign(share=[d / p if p else None for d, p in zip(dis["disagree"], dis["pipeline_judged"], strict=True)])[
            ["failure_type", "pipeline_judged", "disagree", "share"]
        ],
        hide_index=True,
        key="overview_disagreement",
        column_config={
            "failure_type": st.column_config.TextColumn("Our verdict", help="The dashboard's failure type"),
            "pipeline_judged": st.column_config.NumberColumn(
                "Compared", help="Items the pipeline had given a verdict, judged again by the dashboard"
            ),
            "disagree": st.column_config.NumberColumn(
                "Differ", help="The pipeline had said another type or correctability"
            ),
            "share": st.column_config.ProgressColumn("Share", format="percent", min_value=0.0, max_value=1.0),
        },
    )
    line = (f"We differ from the pipeline's classifier on {fmt_int(total_dis)} of the {fmt_int(total_judged)} "
            "items it had classified.")  # fmt: skip
    if unjudged:
        line += f" {fmt_int(unjudged)} item(s) still show the pipeline's verdict: run the classification."
    st.caption(line)
    if total_dis:
        st.page_link(
            "views/triage/failures.py",
            label="List the items where we differ",
            icon=":material/compare_arrows:",
            query_params={**briefing_panel.filter_params(f), "disagree": "true"},
        )

resolve.render_pending(store)
