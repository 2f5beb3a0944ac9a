"""Dashboard actions that write: each shows progress, reports what it did and clears the caches."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from lib import classification
from lib.errors import TriageError
from lib.model import Filters
from lib.store import Store
from ui import context, data
from ui.widgets import fmt_int

K_CLASSIFY = "overview_classify"
K_CLASSIFIED = "overview_classified_report"


def classify_panel(store: Store, filters: Filters) -> None:
    """'Classify N unclassified failures' for the date range in view, when there are any."""
    report = st.session_state.pop(K_CLASSIFIED, None)
    if report:
        st.success("\n\n".join(report), icon=":material/fact_check:")
    scope = {"since": filters.date_from, "until": filters.date_to}
    pending = context.guarded(lambda: classification.count_to_classify(store, **scope))
    if not pending:
        return
    with st.container(border=True):
        left, right = st.columns([2.2, 1.3], vertical_alignment="center")
        left.markdown(
            f"**{fmt_int(pending)} failure items** in this date range have no classification yet (expected ones "
            "included). The classifier checks each missing game against the schedule, the raw box scores and "
            "analytics: did the player not play, or is data missing?"
        )
        if right.button(
            f"Classify {fmt_int(pending)} unclassified failures",
            key=K_CLASSIFY,
            type="primary",
            icon=":material/fact_check:",
            width="stretch",
        ):
            bar = st.progress(0.0, text="Starting")
            try:
                result = classification.run(
                    store,
                    now=dt.datetime.now(dt.UTC),
                    progress=lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message),
                    **scope,
                )
            except TriageError as exc:
                context.show_error(exc)
                return
            data.refresh()
            st.session_state[K_CLASSIFIED] = result.lines()
            st.rerun()
