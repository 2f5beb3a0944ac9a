"""Incidents: one row per root cause (a game side's missing box score, a game's missing phase 3 rows, an unresolved
name, a processor's failed run), with every item it explains, open and settled, and the re-runs it needs."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib import incidents as inc
from lib import resolution
from lib.errors import TriageError
from lib.workqueue import compact_dates
from ui import context, data, filters, identity, resolve
from ui import item as item_panel
from ui import rerun as rerun_panel
from ui.widgets import ITEM_COLUMN_CONFIG, blank_nulls, fmt_int, md, processor_short

K_INCIDENT, K_ITEM = "incident", "item"  # query parameters: deep links to an incident and one of its items
K_SETTLED, K_KIND = "incidents_settled", "incidents_kind"

store = context.get_store()
f = filters.current()
actor = identity.current_actor()
resolve.show_toast()
now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)

st.title("Incidents")
st.caption(
    "One row per root cause, with every failure it explains across the three failure tables and every processor "
    "downstream; an item explained by two causes counts in both. Most open items first. "
    + md(filters.describe(f))
    + " · the status and correctable filters do not apply here"
)

top = st.columns([3, 1.4], vertical_alignment="bottom")
KIND_CHOICES = ("all", *inc.KINDS)
#: One colour per root cause, whichever causes are in view.
KIND_COLOURS = {"RAW_DATA_GAP": "#c0392b", "ANALYTICS_GAP": "#e67e22", "NAME_UNRESOLVED": "#8e44ad", inc.RUN: "#7f8c8d"}
kind = (
    top[0].segmented_control(
        "Root cause",
        KIND_CHOICES,
        default="all",
        key=K_KIND,
        format_func=lambda k: "All" if k == "all" else inc.KIND_SHORT[k],
        help="Box score: a game side's raw box score is missing. Phase 3: a game's analytics rows are missing. Name: a "
        "box-score name the registry cannot resolve. Run: a processor's run failed without a missing game behind it.",
    )
    or "all"
)
settled = top[1].toggle("Settled incidents too", key=K_SETTLED, help="Also the incidents whose every item is settled")

every = context.guarded(lambda: data.incident_board(store, f, now=now, settled=bool(settled)))
shown = every if kind == "all" else every[every["kind"] == kind]
shown = shown.reset_index(drop=True)

open_incidents = every[every["open_items"] > 0]
tiles = st.columns(4)
tiles[0].metric("Open incidents", fmt_int(len(open_incidents)), help="Root causes with at least one open item",
                border=True)  # fmt: skip
explained = context.guarded(lambda: data.view(store, "open_correctable", f))
tiles[1].metric(
    "Open correctable items",
    fmt_int(int(explained)),
    help="Open items whose data can be fixed: each belongs to at least one incident",
    border=True,
)
biggest = open_incidents.iloc[0] if len(open_incidents) else None
tiles[2].metric(
    "Biggest incident",
    fmt_int(int(biggest["open_items"])) + " open" if biggest is not None else "–",
    help=str(biggest["root_cause"]) if biggest is not None else "No open incident",
    border=True,
)
tiles[3].metric(
    "Settling", fmt_int(int((every["state"] == "settling").sum())),
    help="Incidents with some items settled and some still open", border=True,
)  # fmt: skip

if len(open_incidents):
    by_kind = open_incidents.groupby("kind").agg(incidents=("incident_id", "size"), top=("open_items", "max"))
    by_kind = by_kind.reindex([k for k in inc.KINDS if k in by_kind.index])
    fig = go.Figure(
        go.Bar(
            y=[inc.KIND_WORDS[k] for k in by_kind.index],
            x=by_kind["incidents"],
            orientation="h",
            marker_color=[KIND_COLOURS[k] for k in by_kind.index],
            text=[
                f"{fmt_int(int(c))} open · the biggest explains {fmt_int(int(t))} item{'s' if int(t) != 1 else ''}"
                for c, t in zip(by_kind["incidents"], by_kind["top"], strict=True)
            ],
            textposition="auto",
            hovertemplate="%{y}: %{x:,} open incidents<extra></extra>",
        )
    )
    fig.update_layout(height=40 + 38 * len(by_kind), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis={"title": "open incidents"}, yaxis={"autorange": "reversed"},
                      plot_bgcolor="white", dragmode=False)  # fmt: skip
    st.plotly_chart(fig, key="incidents_by_kind", config={"displayModeBar": False})

TABLE_ORDER = ("root_cause", "state", "request", "open_items", "settled_items", "players", "processors", "dates",
               "age", "reruns")  # fmt: skip
table = shown[list(TABLE_ORDER)]  # only what is shown goes to the browser
event = st.dataframe(
    table,
    hide_index=True,
    key="incidents_table",
    on_select="rerun",
    selection_mode="single-row",
    column_order=TABLE_ORDER,
    column_config={
        "root_cause": st.column_config.TextColumn("Root cause", width=330),
        "state": st.column_config.TextColumn("State", width=70, help="open, settling (some items settled), settled"),
        "request": st.column_config.TextColumn("Re-run", width=95, help="The state of its latest re-run request"),
        "open_items": st.column_config.NumberColumn("Open", width=55, help="Open items this cause still explains"),
        "settled_items": st.column_config.NumberColumn(
            "Settled", width=62, help="Items it explained that are settled, or whose evidence is back"
        ),
        "players": st.column_config.NumberColumn("Players", width=62),
        "processors": st.column_config.NumberColumn("Proc.", width=50, help="Processors with items in it"),
        "dates": st.column_config.TextColumn("Item dates", width=110),
        "age": st.column_config.NumberColumn(
            "Age (d)", width=62, help="Days since a run first recorded one of its items"
        ),
        "reruns": st.column_config.TextColumn(
            "Re-runs, in recovery order",
            width="large",
            help="What to run for the open items: re-scrape or registry fix first, then phase 3, then each "
            "processor stage for the dates it failed",
        ),
    },
    height=min(38 + 35 * max(len(table), 1), 420),
)
if shown.empty:
    st.caption("No incident in view." if not settled else "No incident in view, settled or open.")

rows = getattr(getattr(event, "selection", None), "rows", []) or []
if rows and rows[0] < len(shown):
    picked = str(shown.iloc[rows[0]]["incident_id"])
    if st.query_params.get(K_INCIDENT) != picked:
        st.query_params[K_INCIDENT] = picked
        st.query_params.pop(K_ITEM, None)

chosen = st.query_params.get(K_INCIDENT)
if not chosen:
    st.caption("Select a row to see the incident's items, their evidence and history; the address bar then links "
               "to it.")  # fmt: skip
    resolve.render_pending(store)
    st.stop()

try:
    which = inc.IncidentId.parse(chosen)
except TriageError as exc:
    st.warning(f"The link names no incident: {md(exc)}", icon=":material/link_off:")
    st.stop()

st.divider()
match = every[every["incident_id"] == which.text]
if match.empty and not settled:  # a link to an incident settled since: it is still there to look at
    match = context.guarded(lambda: data.incident_list(store, f, now=now, settled=True))
    match = match[match["incident_id"] == which.text]
head = match.iloc[0] if len(match) else None
st.subheader(str(head["root_cause"]) if head is not None else f"Incident {md(which.text[:120])}")
items = context.guarded(lambda: data.incident_items(store, f, which))
if head is None and items.empty:
    st.warning(
        "No item in view belongs to this incident: widen the dates or the filters.", icon=":material/search_off:"
    )
    st.stop()
if head is not None:
    st.markdown(
        f"**{fmt_int(int(head['open_items']))} open** and {fmt_int(int(head['settled_items']))} settled of "
        f"{fmt_int(int(head['items']))} items · {fmt_int(int(head['players']))} players · processors: "
        f"{md(', '.join(processor_short(p) for p in str(head['processor_names']).split(', ')))} · state "
        f"**{head['state']}**"
    )
    steps = head["rerun_steps"]
    if steps:
        st.markdown("**Re-runs it needs, in recovery order**")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "step": n,
                        "stage": s["stage"],
                        "target": s["target"],
                        "dates": compact_dates(dt.date.fromisoformat(d) for d in s["dates"]),
                    }
                    for n, s in enumerate(steps, start=1)
                ]
            ),
            hide_index=True,
            key="incident_steps",
            column_config={
                "step": st.column_config.NumberColumn("Step", width=48),
                "stage": st.column_config.TextColumn("Stage", width=90),
                "target": st.column_config.TextColumn("What", width="medium"),
                "dates": st.column_config.TextColumn("Dates", width="large"),
            },
        )
    else:
        st.caption("Nothing left to re-run: every item it explained is settled.")

if head is not None:
    with st.container(border=True):
        rerun_panel.panel(store, f, which.text, actor)

st.markdown(f"**Its items** ({fmt_int(len(items))}; open ones first)")
if items.empty:
    st.caption("None of its items is in view: widen the dates or the filters.")
    resolve.render_pending(store)
    st.stop()
ITEMS_ORDER = ("open_in_incident", "item_date", "processor_short", "entity_id", "status", "failure_type",
               "is_correctable", "pipeline_said", "failure_category")  # fmt: skip
picked_items = st.dataframe(
    blank_nulls(items[[c for c in ITEMS_ORDER if c in items.columns]]),  # only what is shown goes to the browser
    hide_index=True,
    key="incident_items",
    on_select="rerun",
    selection_mode="single-row",
    column_order=ITEMS_ORDER,
    column_config={
        **ITEM_COLUMN_CONFIG,
        "open_in_incident": st.column_config.CheckboxColumn(
            "Open", width=50, help="Open, and its evidence still names this cause"
        ),
    },
    height=min(38 + 35 * max(len(items), 1), 380),
)
open_keys = [str(k) for k, o in zip(items["key"], items["open_in_incident"], strict=True) if bool(o)]
resolve.buttons(
    store,
    lambda: resolution.Scope.of_keys(open_keys),
    actor,
    key="incident_open",
    what=f"the {len(open_keys)} open items of this incident",
    disabled=not open_keys,
    label=f"{fmt_int(len(open_keys))} open",
)

item_rows = getattr(getattr(picked_items, "selection", None), "rows", []) or []
if item_rows and item_rows[0] < len(items):
    st.query_params[K_ITEM] = str(items.iloc[item_rows[0]]["key"])
chosen_item = st.query_params.get(K_ITEM)
if chosen_item:
    item_panel.render_linked(store, chosen_item, actor)
else:
    st.caption("Select an item to see its evidence and history.")

resolve.render_pending(store)
