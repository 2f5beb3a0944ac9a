"""Entry point: page config, the store, first-start demo data, the shared sidebar, navigation. No queries."""

from __future__ import annotations

import streamlit as st

from ui import actions, briefing, context, data, filters, identity, runlog
from ui.widgets import LAYOUT_CSS, md

st.set_page_config(
    page_title="Failure triage · NBA props pipeline",
    page_icon=":material/troubleshoot:",
    layout="wide",
    initial_sidebar_state="expanded",
)

st.session_state[actions.RUN_NUMBER] = st.session_state.get(actions.RUN_NUMBER, 0) + 1
st.html(LAYOUT_CSS)  # labels wrap rather than cut on a 1280 px laptop

overview = st.Page("views/triage/overview.py", title="Overview", icon=":material/dashboard:", default=True)
failures = st.Page("views/triage/failures.py", title="Failure list", icon=":material/list_alt:", url_path="failures")
incidents = st.Page(
    "views/triage/incidents.py", title="Incidents", icon=":material/crisis_alert:", url_path="incidents"
)
player = st.Page("views/triage/player.py", title="Player", icon=":material/person:", url_path="player")
patterns = st.Page("views/triage/patterns.py", title="DNP patterns", icon=":material/grid_on:", url_path="patterns")
work = st.Page("views/triage/work.py", title="Work queue", icon=":material/build:", url_path="work")
settling = st.Page("views/triage/settling.py", title="Settling", icon=":material/timer:", url_path="settling")
activity = st.Page("views/audit/activity.py", title="Activity", icon=":material/history:", url_path="activity")
nav = st.navigation({"Triage": [overview, failures, incidents, player, patterns, work, settling], "Audit": [activity]})

clock = runlog.RunClock()  # the run's time in the server's log (slow runs always)
store = context.guarded(context.get_store)
# One turn at the database file per run: another process (the nightly job) has its turns between runs, never
# between a run's statements (lib/store/duckdb_store.py, DuckDBStore.held).
try:
    with store.held():
        clock.has_file()
        context.guarded(lambda: context.ensure_demo_data(store))

        st.session_state["app_filters"] = context.guarded(lambda: filters.sidebar(store))
        actor = identity.sidebar()
        briefing.remember_visit(store, actor)

        with st.sidebar:
            st.divider()
            bounds = context.guarded(lambda: data.bounds(store))
            st.caption(
                f"**{store.engine}** · {md(store.location)}  \n"
                f"{bounds.rows:,} failure rows · {bounds.first_date or '–'} to {bounds.last_date or '–'}"
            )
            if st.button("Refresh data", key="app_refresh", icon=":material/refresh:", width="stretch"):
                data.refresh()
                st.rerun()

        nav.run()
finally:
    clock.done(nav.url_path)
