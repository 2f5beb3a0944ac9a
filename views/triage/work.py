"""Work queue: what to re-scrape, re-process and re-run, in the pipeline's recovery order."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import workqueue
from ui import actions, context, data, filters, identity, resolve
from ui.widgets import fmt_int, md

store = context.get_store()
f = filters.current()
actor = identity.current_actor()
resolve.show_toast()

st.title("Correctable work queue")
st.caption(
    "Open items whose data can be fixed, grouped into what to do, in the order the pipeline recovers: raw box "
    "scores first, then phase 3, then the processors (TDZA and PSZA; PCF; PDC; MLFS), then predictions. "
    + md(filters.describe(f))
)
total = context.guarded(lambda: data.view(store, "open_correctable", f))
st.markdown(f"**{fmt_int(total)} open correctable items** in view.")

plan = context.guarded(lambda: data.view(store, "plan", f))


def _csv() -> bytes:
    return data.csv_bytes([plan], list(plan.columns))


st.download_button(
    f"Export the plan ({len(plan)} tasks) as CSV",
    data=_csv,
    file_name="rerun-plan.csv",
    mime="text/csv",
    key="work_export",
    icon=":material/download:",
    disabled=plan.empty,
    on_click="ignore",
)

GAME_COLUMNS = {
    "game_date": st.column_config.DateColumn("Game date"),
    "game_id": "Game",
    "team": "Team side",
    "items": "Items waiting",
    "entities": "Entities",
    "processors": "Processors",
}


def _table(frame: pd.DataFrame, key: str, empty: str, **config: object) -> None:
    if len(frame):
        st.dataframe(frame, hide_index=True, key=key, **config)  # type: ignore[arg-type]
    else:
        st.caption(empty)


st.subheader(f"1 · {workqueue.SECTIONS[0]}")
_table(
    context.guarded(lambda: data.view(store, "rescrape", f)),
    "work_rescrape",
    "Nothing to re-scrape.",
    column_config=GAME_COLUMNS,
)
st.subheader(f"2 · {workqueue.SECTIONS[1]}")
_table(
    context.guarded(lambda: data.view(store, "reprocess", f)),
    "work_reprocess",
    "Nothing to re-process.",
    column_config=GAME_COLUMNS,
)
st.subheader(f"3 · {workqueue.SECTIONS[2]}")
_table(
    context.guarded(lambda: data.view(store, "names", f)),
    "work_names",
    "No unresolved name.",
    column_config={
        "player": "Player (lookup)",
        "team": "Team",
        "first_game": st.column_config.DateColumn("First game"),
        "last_game": st.column_config.DateColumn("Last game"),
        "games": "Games",
        "items": "Items waiting",
    },
)

st.subheader(f"4 · {workqueue.SECTIONS[3]}")
runs = context.guarded(lambda: data.view(store, "reruns", f))
if runs.empty:
    st.caption("No processor to re-run.")
else:
    st.dataframe(
        runs,
        hide_index=True,
        key="work_reruns",
        column_order=("section", "stage", "items", "dates", "date_ranges", "processor_name"),
        column_config={
            "section": st.column_config.TextColumn("Step", width=48),
            "stage": st.column_config.TextColumn("Stage", width=90),
            "processor_name": st.column_config.TextColumn("Processor", width="medium"),
            "dates": st.column_config.NumberColumn("Dates", width=55),
            "items": st.column_config.NumberColumn("Items", width=60),
            "date_ranges": st.column_config.TextColumn(
                "Dates to re-run",
                width="large",
                help="Consecutive dates joined into ranges; the exported plan lists every date in full",
            ),
        },
    )

st.divider()
st.markdown("**After the fix**: re-classify and close what the data now supports.")
actions.suggestions(store, f, actor, dnp=False, page="work")
resolve.render_pending(store)
