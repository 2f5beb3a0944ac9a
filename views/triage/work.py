"""Work queue: what to re-scrape, re-process and re-run, in the pipeline's recovery order."""

from __future__ import annotations

import pandas as pd
import streamlit as st

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


st.subheader("1 · Raw box scores to re-scrape")
_table(
    context.guarded(lambda: data.view(store, "rescrape", f)),
    "work_rescrape",
    "Nothing to re-scrape.",
    column_config=GAME_COLUMNS,
)
st.subheader("2 · Games to re-process in phase 3")
_table(
    context.guarded(lambda: data.view(store, "reprocess", f)),
    "work_reprocess",
    "Nothing to re-process.",
    column_config=GAME_COLUMNS,
)
st.subheader("3 · Names to fix in the player registry")
_table(context.guarded(lambda: data.view(store, "names", f)), "work_names", "No unresolved name.")

st.subheader("4 · Processors to re-run, in recovery order")
runs = context.guarded(lambda: data.view(store, "reruns", f))
if runs.empty:
    st.caption("No processor to re-run.")
else:
    st.dataframe(
        runs,
        hide_index=True,
        key="work_reruns",
        column_order=("step", "stage", "processor_name", "dates", "first_date", "last_date", "items", "date_list"),
        column_config={
            "step": "Step",
            "stage": "Stage",
            "processor_name": "Processor",
            "dates": "Dates",
            "first_date": st.column_config.DateColumn("From"),
            "last_date": st.column_config.DateColumn("To"),
            "items": "Items",
            "date_list": st.column_config.TextColumn("Dates to re-run", width="large"),
        },
    )

st.divider()
st.markdown("**After the fix**: re-classify and close what the data now supports.")
actions.suggestions(store, f, actor, dnp=False)
resolve.render_pending(store)
