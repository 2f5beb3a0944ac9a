"""Dashboard actions that write: each shows progress, reports what it did and clears the caches."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from lib import classification, resolution
from lib.errors import TriageError
from lib.model import Actor, Filters, ResolutionStatus, utc_now
from lib.store import Store
from ui import context, data, resolve
from ui.widgets import fmt_int

K_CLASSIFY = "overview_classify"
K_DNP = "overview_mark_dnp_permanent"
K_AUTORESOLVE = "overview_autoresolve"
K_RECLASSIFY = "overview_reclassify"
K_CLASSIFIED = "overview_classified_report"


def _classify(store: Store, scope: dict[str, dt.date | None], actor: Actor | None, *, everything: bool) -> None:
    bar = st.progress(0.0, text="Starting")
    try:
        result = classification.run(
            store,
            actor=actor,
            origin="dashboard",
            now=dt.datetime.now(dt.UTC),
            clock=utc_now,
            config=context.classifier_config(),
            include_classified=everything,
            progress=lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message),
            **scope,
        )
    except TriageError as exc:
        context.show_error(exc)
        return
    data.refresh()
    st.session_state[K_CLASSIFIED] = result.lines()
    st.rerun()


def classify_panel(store: Store, filters: Filters, actor: Actor | None) -> None:
    """'Classify N unclassified failures' for the date range in view, and re-classification on demand:
    for resolvers only (``lib`` refuses anyone else in any case)."""
    report = st.session_state.pop(K_CLASSIFIED, None)
    if report:
        st.success("\n\n".join(report), icon=":material/fact_check:")
    scope = {"since": filters.date_from, "until": filters.date_to}
    pending = context.guarded(lambda: data.to_classify(store, filters))
    if not resolve.can_act(actor):
        if pending:
            st.caption(
                f":material/hourglass_empty: {fmt_int(pending)} failure items of this range are not classified by the "
                "dashboard yet (no verdict, or only the pipeline's); a resolver can classify them."
            )
        return  # how to get the actions is said once, under the suggestions
    if pending:
        with st.container(border=True):
            left, right = st.columns([2.2, 1.3], vertical_alignment="center")
            left.markdown(
                f"**{fmt_int(pending)} failure items** in this date range have no verdict of the dashboard's yet "
                "(none at all, or only the pipeline's own, which is known to be wrong in places; expected ones "
                "included). The classifier checks each missing game against the schedule, the raw box scores "
                "and analytics: did the player not play, or is data missing?"
            )
            if right.button(
                f"Classify {fmt_int(pending)} failures",
                key=K_CLASSIFY,
                type="primary",
                icon=":material/fact_check:",
                width="stretch",
            ):
                _classify(store, scope, actor, everything=False)
    with st.popover("Re-classify this date range", icon=":material/restart_alt:"):
        everything = context.guarded(lambda: data.to_classify(store, filters, everything=True))
        st.markdown(
            f"Judge all **{fmt_int(everything)} items** of this date range again from today's evidence, replacing "
            'earlier verdicts, the pipeline\'s own included (it reads "absent from the box score" as "did not '
            'play" and "listed" as "complete"). Data that has arrived since turns failures COMPLETE.'
        )
        if st.button(f"Re-classify {fmt_int(everything)} items", key=K_RECLASSIFY, icon=":material/restart_alt:"):
            _classify(store, scope, actor, everything=True)


K_AUTORESOLVED = "autoresolve_report"  # (page, lines): shown on the page where it ran
K_AUTORESOLVE_ASK = "autoresolve_confirm_open"  # (page, run number) while its confirm dialog is open
RUN_NUMBER = "app_run_number"


def suggestions(
    store: Store, filters: Filters, actor: Actor | None, *, dnp: bool = True, page: str = "overview"
) -> None:
    """One-step actions the data suggests: settle did-not-play items, close items whose data arrived. Each asks
    for confirmation first (both touch more than a selection) and reports its result on this page."""
    done = st.session_state.get(K_AUTORESOLVED)
    if done and done[0] == page:
        st.session_state.pop(K_AUTORESOLVED, None)
        st.success("\n\n".join(done[1]), icon=":material/auto_fix_high:")
    if not resolve.can_act(actor):
        resolve.explain_cannot_act(actor)  # where the actions would be, say how to get them
        return
    assert actor is not None
    dnp_scope = resolution.dnp_scope(filters)
    dnp_count = context.guarded(lambda: data.count(store, dnp_scope.filters)) if dnp else 0
    left, right = st.columns(2)
    with left:
        if dnp_count and st.button(
            f"Mark {fmt_int(dnp_count)} did-not-play items permanent",
            key=K_DNP,
            icon=":material/block:",
            help="Every open PLAYER_DNP item in this view: the player did not play, there is nothing to fix.",
            width="stretch",
        ):
            resolve.ask(dnp_scope, ResolutionStatus.PERMANENT, actor, "open PLAYER_DNP items of this view")
    with right:
        if st.button(
            "Auto-resolve items whose data has arrived…",
            key=K_AUTORESOLVE,
            icon=":material/auto_fix_high:",
            help="Re-classify this date range from today's evidence, then resolve (as 'system') every open item "
            "that is now COMPLETE, with the evidence in the note. Asks first.",
            width="stretch",
        ):
            st.session_state[K_AUTORESOLVE_ASK] = (page, _run_number())
    asked = st.session_state.get(K_AUTORESOLVE_ASK)
    # Open while it was open on the run just before (a click inside it reruns the page); a dialog left by going to
    # another page does not come back on the next visit.
    if asked and asked[0] == page and asked[1] >= _run_number() - 1:
        st.session_state[K_AUTORESOLVE_ASK] = (page, _run_number())
        _confirm_autoresolve(store, filters, actor, page)
    elif asked:
        _close_autoresolve()


def _run_number() -> int:
    """This session's script run, counted by app.py (each rerun of any page adds one)."""
    return int(st.session_state.get(RUN_NUMBER, 0))


def _close_autoresolve() -> None:
    st.session_state.pop(K_AUTORESOLVE_ASK, None)


@st.dialog("Auto-resolve this date range", width="large", on_dismiss=_close_autoresolve)
def _confirm_autoresolve(store: Store, filters: Filters, actor: Actor, page: str) -> None:
    """What auto-resolve will rewrite, before it does: every verdict of the range, not only the view's items."""
    everything = context.guarded(lambda: data.to_classify(store, filters, everything=True))
    st.markdown(
        f"Judge all **{fmt_int(everything)} items** dated **{filters.date_from} to {filters.date_to}** again from "
        "today's evidence (every table and processor of the range, whatever the other filters), replacing their "
        "verdicts, then mark **RESOLVED** (as `system`, with the evidence in the note) each open item that is "
        "now COMPLETE because its data has arrived."
    )
    st.caption("Verdicts that change are kept in each item's verdict history; a resolved item can be reopened.")
    go, cancel = st.columns(2)
    if cancel.button("Cancel", key="autoresolve_cancel", width="stretch"):
        _close_autoresolve()
        st.rerun()
    if not go.button("Confirm: re-judge and auto-resolve", key="autoresolve_go", type="primary",
                     icon=":material/auto_fix_high:", width="stretch"):  # fmt: skip
        return
    bar = st.progress(0.0, text="Re-classifying")
    try:
        report, resolved = resolution.autoresolve(
            store,
            actor=actor,
            origin="dashboard",
            now=dt.datetime.now(dt.UTC),
            clock=utc_now,
            config=context.classifier_config(),
            since=filters.date_from,
            until=filters.date_to,
            progress=lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message),
        )
    except TriageError as exc:
        context.show_error(exc)
        return
    data.refresh()
    _close_autoresolve()
    st.session_state[K_AUTORESOLVED] = (page, [*report.lines(), f"Auto-resolved {fmt_int(resolved)} item(s) whose "
                                               "data has arrived (actor: system)."])  # fmt: skip
    st.rerun()
