"""The re-run request panel of an incident: preview, confirm with a note, send; then the requests and their states."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import pandas as pd
import streamlit as st

from lib import reruns
from lib.errors import TriageError
from lib.model import Actor, Filters
from lib.store import Store
from ui import context, data, resolve
from ui.widgets import blank_nulls, fmt_int, md

K_PLAN, K_FORCE, K_NOTE, K_DIALOG = "rerun_plan", "rerun_force", "rerun_note", "rerun_dialog"
K_STEPS = "rerun_steps"


def settings() -> reruns.RerunSettings:
    """The environment first; ``[triage.reruns]`` in secrets (pubsub_project, scrape / phase3 / phase4 /
    predictions = "pubsub:TOPIC" | "http:URL" | "none", http_audience, max_dates, stale_hours) fills the rest."""
    env = dict(os.environ)
    section: dict[str, Any] = {}
    try:
        section = dict(dict(st.secrets.get("triage", {})).get("reruns", {}))
    except Exception:  # no secrets file: the local default
        section = {}
    names = {"pubsub_project": "TRIAGE_PUBSUB_PROJECT", "http_audience": "TRIAGE_RERUN_HTTP_AUDIENCE",
             "max_dates": "TRIAGE_RERUN_MAX_DATES", "stale_hours": "TRIAGE_RERUN_STALE_HOURS",
             **{k: f"TRIAGE_RERUN_{k.upper()}" for k in reruns.KINDS}}  # fmt: skip
    for key, name in names.items():
        if name not in env and section.get(key) not in (None, ""):
            env[name] = str(section[key])
    try:
        return reruns.RerunSettings.from_mapping(env)
    except ValueError as exc:
        st.error(f"**The re-run settings cannot be read.** {exc}", icon=":material/error:")
        st.stop()
        raise


def _destinations(cfg: reruns.RerunSettings) -> str:
    parts = []
    for kind in reruns.KINDS:
        d = cfg.destinations[kind]
        parts.append(f"{kind}: {md(d.label)}" + (f" ({md(d.why_none)})" if d.type == "none" and d.why_none else ""))
    return " · ".join(parts)


def panel(store: Store, f: Filters, incident_id: str, actor: Actor | None) -> None:
    cfg = settings()
    st.markdown("**Request the re-run**")
    if not cfg.configured:
        st.caption(
            ":material/info: Nothing is configured to send re-runs (TRIAGE_PUBSUB_PROJECT, TRIAGE_RERUN_*; README, "
            "*Fixing from the console*): a request is recorded, followed, and shown as the commands to run by hand."
        )
    st.caption("Destinations: " + _destinations(cfg))
    if not resolve.can_act(actor):
        resolve.explain_cannot_act(actor)
    cols = st.columns([1.2, 2.4], vertical_alignment="center")
    force = cols[1].toggle("Ask again for steps already pending", key=K_FORCE)
    if cols[0].button("Preview the re-run", key="rerun_preview", icon=":material/preview:",
                      disabled=not resolve.can_act(actor)):  # fmt: skip
        st.session_state[K_PLAN] = (incident_id, bool(force))
    wanted = st.session_state.get(K_PLAN)
    if wanted and wanted[0] == incident_id:
        try:
            plan = reruns.plan_incident(store, f, incident_id, cfg, now=dt.datetime.now(dt.UTC), force=bool(force))
        except TriageError as exc:
            context.show_error(exc)
            plan = None
        if plan is not None:
            _preview(plan, cfg, actor)
    _requests(store, f, incident_id, cfg)
    if st.session_state.get(K_DIALOG) == incident_id and actor is not None and wanted:
        try:
            plan = _narrowed(reruns.plan_incident(store, f, incident_id, cfg, now=dt.datetime.now(dt.UTC),
                                                  force=bool(force)))  # fmt: skip
        except TriageError as exc:
            context.show_error(exc)
            return
        _confirm(store, plan, cfg, actor)


def _chosen_steps(plan: reruns.Plan) -> tuple[int, int] | None:
    """The range of steps chosen for this plan (None: every step, or a range this plan does not have)."""
    chosen = st.session_state.get(K_STEPS)
    steps = plan.steps
    if isinstance(chosen, tuple | list) and len(chosen) == 2 and chosen[0] in steps and chosen[1] in steps:
        return int(chosen[0]), int(chosen[1])
    return None


def _narrowed(plan: reruns.Plan) -> reruns.Plan:
    chosen = _chosen_steps(plan)
    return plan.only_steps(*chosen) if chosen else plan


def _step_choice(plan: reruns.Plan) -> reruns.Plan:
    """With more than one step: which to send now. Sending the first steps only lets the pipeline run the rest in
    its own order (the last step sent may cascade); sending every step runs each stage now, each told not to."""
    steps = plan.steps
    if len(steps) < 2 or not plan.messages:
        return plan
    if _chosen_steps(plan) is None:
        st.session_state.pop(K_STEPS, None)
    names = {m.step: m.stage for m in plan.messages}
    st.select_slider(
        "Steps to send",
        options=steps,
        value=(steps[0], steps[-1]),
        key=K_STEPS,
        format_func=lambda n: f"{n} {names[n]}",
        help="Every step: each stage is asked for now and told not to cascade (skip_downstream_trigger). The first "
        "steps only (say the re-scrape and phase 3): the last one sent may cascade, and the pipeline runs the rest "
        "in order, each stage once the one before has finished; the request follows the items either way.",
    )
    return _narrowed(plan)


def _left_words(plan: reruns.Plan, left: list[int]) -> str:
    """What happens to the steps after the last one sent: the pipeline's cascade, except after a registry fix, which
    a person makes and which starts no run."""
    steps = f"step {left[0]}" if len(left) == 1 else f"steps {left[0]}–{left[-1]}"
    last = [m for m in plan.messages if m.step == max(plan.steps)]
    if plan.ends_with_registry:
        return f" · {steps} not asked for: a registry fix starts no run, so ask for them once the name is fixed"
    if all(m.destination.type == "none" for m in last):
        return f" · {steps} left to the pipeline's cascade once the step recorded here is run by hand"
    return f" · {steps} left to the pipeline's cascade"


def _preview(plan: reruns.Plan, cfg: reruns.RerunSettings, actor: Actor | None) -> None:
    full = plan
    plan = _step_choice(plan)
    if plan.skipped:
        st.info(
            f"{fmt_int(len(plan.skipped))} step(s) are pending from an earlier request and are not asked again "
            "(the toggle above asks again): "
            + "; ".join(f"{m.stage} {m.data_date:%b %d} (request {m.pending[0][:8]})" for m in plan.skipped[:6]),
            icon=":material/hourglass_top:",
        )
    if not plan.messages:
        st.caption("Nothing left to request.")
        return
    frame = plan.frame()
    over = len(plan.dates) > cfg.max_dates
    left = [n for n in full.steps if n > max(plan.steps)]
    st.markdown(
        f"{fmt_int(len(plan.messages))} message(s) over {fmt_int(len(plan.dates))} date(s), in recovery order"
        + (_left_words(plan, left) if left else "")
        + (f" · **more than the {cfg.max_dates} dates a request may cover**: narrow the dates in the sidebar"
           if over else "")
    )  # fmt: skip
    st.dataframe(
        frame,
        hide_index=True,
        key="rerun_preview_table",
        column_config={
            "step": st.column_config.NumberColumn("Step", width=48),
            "stage": st.column_config.TextColumn("Stage", width=90),
            "date": st.column_config.DateColumn("Date", format="YYYY-MM-DD", width=96),
            "processors": st.column_config.TextColumn("Processors", width="medium"),
            "destination": st.column_config.TextColumn("Goes to", width="medium"),
            "items": st.column_config.NumberColumn("Items it should settle", width=80),
            "pending": None,
            "payload": st.column_config.TextColumn("Message", width="large"),
        },
        height=min(38 + 35 * len(frame), 320),
    )
    label = "Send" if cfg.configured else "Record"
    if st.button(f"{label} {fmt_int(len(plan.messages))} message(s)…", key="rerun_send", type="primary",
                 icon=":material/send:", disabled=over or not resolve.can_act(actor)):  # fmt: skip
        st.session_state[K_DIALOG] = plan.incident_id


def _close() -> None:
    st.session_state.pop(K_DIALOG, None)
    st.session_state.pop(K_NOTE, None)


@st.dialog("Request the re-run", width="large", on_dismiss=_close)
def _confirm(store: Store, plan: reruns.Plan, cfg: reruns.RerunSettings, actor: Actor) -> None:
    sending = [m for m in plan.messages if m.destination.type != "none"]
    st.markdown(
        f"**{md(plan.title)}**: {fmt_int(len(plan.messages))} message(s) over {fmt_int(len(plan.dates))} date(s); "
        + (f"{fmt_int(len(sending))} go out now, " if sending else "")
        + f"{fmt_int(len(plan.messages) - len(sending))} are recorded to run by hand."
    )
    by_place: dict[str, int] = {}
    for m in plan.messages:
        by_place[m.destination.label] = by_place.get(m.destination.label, 0) + 1
    st.caption(" · ".join(f"{md(k)}: {fmt_int(v)}" for k, v in by_place.items()))
    note = st.text_area("Note (required): why?", key=K_NOTE, max_chars=2000,
                        placeholder="e.g. ORL's box score of Feb 4 never arrived: re-scrape and re-run")  # fmt: skip
    st.caption(f"Recorded as **{md(actor.name)}**, with this note, the destinations and the messages, verbatim.")
    if st.button("Confirm the request", key="rerun_confirm", type="primary", icon=":material/send:"):
        if not note.strip():
            st.error("A note is required: say why.")
            return
        try:
            sent = reruns.send(store, plan, actor, note=note, settings=cfg, now=dt.datetime.now(dt.UTC))
        except TriageError as exc:
            context.show_error(exc)
            return
        data.refresh()
        message = f"Re-run request: {fmt_int(sent.sent)} message(s) " + ("sent" if sending else "recorded")
        if sent.duplicates:
            message += f", {fmt_int(sent.duplicates)} already asked by someone else"
        if sent.failed:
            message += f"; {fmt_int(len(sent.failed))} not sent: {sent.failed[0]['error'][:160]}"
        st.session_state[resolve.K_TOAST] = message
        st.session_state.pop(K_PLAN, None)
        _close()
        st.rerun()


def _requests(store: Store, f: Filters, incident_id: str, cfg: reruns.RerunSettings) -> None:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    followed = context.guarded(lambda: data.rerun_messages(store, f.with_(date_from=None, date_to=None), now=now,
                                                           incident_id=incident_id))  # fmt: skip
    if followed.empty:
        st.caption("No re-run requested for this incident yet.")
        return
    summary = reruns.requests(followed)
    st.markdown(f"**Requests for this incident** ({fmt_int(len(summary))})")
    for r in summary.head(3).to_dict("records"):
        mine = followed[followed["request_id"] == r["request_id"]]
        counts = mine["state"].value_counts()
        tally = ", ".join(f"{fmt_int(int(n))} {s}" for s, n in counts.items())
        st.markdown(
            f"Request **{r['state']}** · asked by {md(r['actor'])} {pd.Timestamp(r['at']):%b %d %H:%M} UTC · "
            f"{fmt_int(int(r['messages']))} message(s): {tally} · _{md(str(r['note'])[:160])}_"
        )
    order = ("at", "actor", "step", "stage", "data_date", "processors", "state", "detail", "message_id", "destination")
    shown = blank_nulls(followed[list(order)].assign(processors=followed["processors"].map(reruns.shown)))
    st.dataframe(
        shown,
        hide_index=True,
        key="rerun_requests_table",
        column_order=order,
        column_config={
            "at": st.column_config.DatetimeColumn("Asked (UTC)", format="YYYY-MM-DD HH:mm", width=130),
            "actor": st.column_config.TextColumn("By", width=70),
            "step": st.column_config.NumberColumn("Step", width=45),
            "stage": st.column_config.TextColumn("Stage", width=80),
            "data_date": st.column_config.DateColumn("Date", format="YYYY-MM-DD", width=96),
            "processors": st.column_config.TextColumn("Asks for", width="medium"),
            "state": st.column_config.TextColumn("State", width=110, help=", ".join(reruns.STATES)),
            "detail": st.column_config.TextColumn("Why", width="medium"),
            "message_id": st.column_config.TextColumn("Message id", width="small"),
            "destination": st.column_config.TextColumn("Destination", width="small"),
        },
        height=min(38 + 35 * len(shown), 320),
    )
    recorded = followed[followed["destination_type"] == "none"]
    if len(recorded):
        with st.expander(f"Commands to run by hand ({fmt_int(len(recorded))})"):
            st.code("\n".join(_command(r, cfg) for r in recorded.to_dict("records")), language="bash")


def _command(row: dict[Any, Any], cfg: reruns.RerunSettings) -> str:
    payload = str(row["payload"])
    if row["kind"] == "registry":
        return f"# fix the registry: {json.loads(payload).get('task', '')}"
    if row["kind"] == "scrape":
        return f"curl -X POST https://nba-scrapers-…/scrape -H 'Content-Type: application/json' -d '{payload}'"
    topic = reruns.DEFAULT_DESTINATIONS.get(str(row["kind"]), "").partition(":")[2] or "TOPIC"
    return f"gcloud pubsub topics publish {topic} --project {cfg.pubsub_project or 'PROJECT'} --message '{payload}'"
