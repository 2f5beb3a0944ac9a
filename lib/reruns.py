"""Re-run requests to the pipeline, from a root cause to the verified settlement.

1. **Plan** (``plan_incident``, ``plan_processor``): the messages a fix implies, in the pipeline's recovery order:
   re-scrape the game side (or fix the registry name), phase 3 for the game's date, each phase 4 stage for the dates
   its processors failed, then predictions. Only what failed and is still open is asked for; a processor and date
   with a request still pending is left out (and shown) unless the resolver forces it.
2. **Send** (``send``): each message claims its processors and dates first (a row in
   ``nba_processing.rerun_requests``, with the items it should settle in ``rerun_request_items``); of two resolvers
   pressing at once the earlier claim wins and the other records a duplicate, so one message goes out. Then it goes
   to its destination (a Pub/Sub topic, an HTTP endpoint, or none: recorded and shown as the command to run), and
   the outcome (message id, or the error) is appended. A failed step stops the steps after it.
3. **Follow** (``follow``): a message is pending until a run of ``nba_reference.processor_run_history`` answers
   it (its ``trigger_message_id`` is the message id, its ``trigger_message_data`` carries the correlation id, or a
   run of one of its processors for its date started after it), then settled (every item it should settle is
   settled), still failing (the run failed, or recorded the failure again) or, without a run within
   ``stale_after``, stale. Nothing is stored for these states: they are read from the runs and the items, so the
   nightly job and auto-resolve advance them by settling items.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from lib import incidents as inc
from lib.access import require_resolver
from lib.errors import BadInput, TriageError
from lib.model import OPEN_STATUSES, PHASE3_PROCESSORS, SETTLED_STATUSES, Actor, Filters, ItemKey
from lib.settling import nearest_rank
from lib.store import queries as q
from lib.store.base import Store
from lib.workqueue import RECOVERY_STEP

TRIGGER_SOURCE = "triage-console"
#: Task kinds, in recovery order; each has a destination.
KINDS = ("scrape", "registry", "phase3", "phase4", "predictions")
DEFAULT_DESTINATIONS = {
    "scrape": "none",  # the scrapers' service takes POST /scrape: configure http:https://.../scrape
    "registry": "none",  # a person fixes the registry
    "phase3": "pubsub:nba-phase3-trigger",
    "phase4": "pubsub:nba-phase4-trigger",
    "predictions": "none",
}
SCRAPER = "nbac_gamebook_pdf"
DEFAULT_MAX_DATES = 14
DEFAULT_STALE_HOURS = 6.0
#: A message's states, as read by ``follow``.
STATES = ("settled", "still failing", "run seen", "running", "pending", "stale", "sending", "failed", "duplicate")


class SendFailed(TriageError):
    """A destination did not take a message."""


@dataclass(frozen=True)
class Destination:
    """Where one kind of task goes: ``pubsub`` (a topic of ``project``), ``http`` (a URL) or ``none``."""

    type: str
    target: str = ""
    why_none: str = ""

    @property
    def label(self) -> str:
        if self.type == "pubsub":
            return f"Pub/Sub topic {self.target}"
        if self.type == "http":
            return f"POST {self.target}"
        return "not sent: recorded, to run by hand"


@dataclass(frozen=True)
class RerunSettings:
    destinations: Mapping[str, Destination]
    pubsub_project: str = ""
    http_audience: str = ""
    max_dates: int = DEFAULT_MAX_DATES
    stale_after: dt.timedelta = dt.timedelta(hours=DEFAULT_STALE_HOURS)
    timeout: float = 30.0

    @property
    def configured(self) -> bool:
        """Whether anything is sent at all (else every request is only recorded)."""
        return any(d.type != "none" for d in self.destinations.values())

    @classmethod
    def from_mapping(cls, raw: Mapping[str, str]) -> RerunSettings:
        """TRIAGE_PUBSUB_PROJECT, TRIAGE_RERUN_<KIND> (``pubsub:TOPIC``, ``http:URL`` or ``none``),
        TRIAGE_RERUN_HTTP_AUDIENCE (a Cloud Run ID token for this audience), TRIAGE_RERUN_MAX_DATES,
        TRIAGE_RERUN_STALE_HOURS, TRIAGE_RERUN_TIMEOUT."""
        project = str(raw.get("TRIAGE_PUBSUB_PROJECT", "")).strip()
        destinations: dict[str, Destination] = {}
        for kind in KINDS:
            spec = str(raw.get(f"TRIAGE_RERUN_{kind.upper()}", "") or DEFAULT_DESTINATIONS[kind]).strip()
            destinations[kind] = _destination(kind, spec, project)
        return cls(
            destinations=destinations,
            pubsub_project=project,
            http_audience=str(raw.get("TRIAGE_RERUN_HTTP_AUDIENCE", "")).strip(),
            max_dates=_positive(raw, "TRIAGE_RERUN_MAX_DATES", DEFAULT_MAX_DATES, int),
            stale_after=dt.timedelta(hours=_positive(raw, "TRIAGE_RERUN_STALE_HOURS", DEFAULT_STALE_HOURS, float)),
            timeout=_positive(raw, "TRIAGE_RERUN_TIMEOUT", 30.0, float),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RerunSettings:
        return cls.from_mapping(os.environ if env is None else env)


def _positive(raw: Mapping[str, str], name: str, default: Any, kind: Callable[[str], Any]) -> Any:
    text = str(raw.get(name, "") or "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name} must be a positive number, not {text[:40]!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be a positive number, not {text[:40]!r}")
    return value


def _destination(kind: str, spec: str, project: str) -> Destination:
    if kind == "registry" or spec == "none":
        why = "a person fixes the player registry" if kind == "registry" else f"TRIAGE_RERUN_{kind.upper()} is none"
        return Destination("none", why_none=why)
    scheme, _, target = spec.partition(":")
    if scheme == "pubsub" and target.strip():
        if not project:
            return Destination("none", why_none="no Pub/Sub project is configured (TRIAGE_PUBSUB_PROJECT)")
        return Destination("pubsub", target.strip())
    url = target.strip()
    if scheme == "http" and url.startswith(("http://", "https://")) and not any(c.isspace() or ord(c) < 32
                                                                                  for c in url):  # fmt: skip
        return Destination("http", url)
    raise ValueError(f"TRIAGE_RERUN_{kind.upper()}: {spec[:80]!r} is not pubsub:TOPIC, http:URL or none")


# -- 1. the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message to the pipeline: a step of the recovery order for one date."""

    key: str
    step: int
    stage: str
    kind: str
    processors: tuple[str, ...]
    data_date: dt.date
    payload: Mapping[str, Any]
    items: tuple[ItemKey, ...]
    destination: Destination
    #: Processors left out because a request for them and this date is still pending (request ids).
    pending: tuple[str, ...] = ()

    @property
    def claims(self) -> tuple[str, ...]:
        """What a pending request of this message covers: each processor (or scrape, or name) with the date."""
        return tuple(f"{p}|{self.data_date.isoformat()}" for p in self.processors)

    def command(self, project: str = "PROJECT") -> str:
        """The command that sends it by hand."""
        body = json.dumps(self.payload, sort_keys=True)
        if self.destination.type == "http":
            return f"curl -X POST -H 'Content-Type: application/json' {self.destination.target} -d '{body}'"
        if self.kind == "registry":
            return f"fix the registry: {self.payload.get('task', '')}"
        if self.kind == "scrape":
            return f"curl -X POST -H 'Content-Type: application/json' https://NBA-SCRAPERS-URL/scrape -d '{body}'"
        topic = self.destination.target or DEFAULT_DESTINATIONS.get(self.kind, "").partition(":")[2] or "TOPIC"
        return f"gcloud pubsub topics publish {topic} --project {project} --message '{body}'"


@dataclass(frozen=True)
class Plan:
    messages: tuple[Message, ...]
    incident_id: str = ""
    title: str = ""
    #: Messages left out whole: every processor of theirs is pending already.
    skipped: tuple[Message, ...] = ()
    #: Asked again for what is pending (a concurrent claim still wins; a finished earlier request does not).
    forced: bool = False

    @property
    def dates(self) -> list[dt.date]:
        return sorted({m.data_date for m in self.messages})

    @property
    def steps(self) -> list[int]:
        return sorted({m.step for m in self.messages})

    @property
    def fixes_its_source(self) -> bool:
        """Whether it starts with its own re-scrape or registry fix (its runs must come after that fix)."""
        return any(m.kind in ("scrape", "registry") for m in self.messages)

    @property
    def ends_with_registry(self) -> bool:
        """Whether its last step is a registry fix: a person makes it, and it starts no run (nothing cascades)."""
        if not self.messages:
            return False
        last = self.steps[-1]
        return all(m.kind == "registry" for m in self.messages if m.step == last)

    def only_steps(self, first: int, last: int) -> Plan:
        """The steps ``first`` to ``last`` only. When later steps are left out, the last one sent goes without
        ``skip_downstream_trigger``: the pipeline then runs what follows in its own order, each stage once the one
        before it has finished (what a request that lists every step cannot wait for)."""
        steps = self.steps
        if not steps or first > last or first not in steps or last not in steps:
            raise BadInput(
                f"No steps {first}-{last} in this plan: it has steps {', '.join(map(str, steps)) or 'none'}.",
                "Choose a range of the steps the preview lists (--steps FIRST-LAST).",
            )
        kept = []
        for m in self.messages:
            if not first <= m.step <= last:
                continue
            if m.step == last and last < steps[-1] and "skip_downstream_trigger" in m.payload:
                m = replace(m, payload={k: v for k, v in m.payload.items() if k != "skip_downstream_trigger"})
            kept.append(m)
        return replace(self, messages=tuple(kept))

    def frame(self) -> pd.DataFrame:
        """The preview as a table: what goes where, for which dates, and the items each should settle."""
        rows = [
            {"step": m.step, "stage": m.stage, "date": m.data_date, "processors": shown(m.processors),
             "destination": m.destination.label, "items": len(m.items),
             "pending": ", ".join(m.pending), "payload": json.dumps(m.payload, sort_keys=True)}
            for m in self.messages
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=["step", "stage", "date", "processors", "destination", "items", "pending",
                                           "payload"])  # fmt: skip


def shown(processors: str | Sequence[str]) -> str:
    """What a message asks for, for people: processors by name; a re-scrape or a registry fix in words."""
    names = processors.split(",") if isinstance(processors, str) else list(processors)
    out = []
    for name in names:
        kind, _, rest = name.partition(":")
        subject, _, team = rest.partition(":")
        if kind == "scrape" and rest:
            out.append(f"box score of {subject} ({team})")
        elif kind == "registry" and rest:
            out.append(f"registry name {subject} ({team})")
        else:
            out.append(name)
    return ", ".join(out)


_STAGE_KIND = {"phase 3": "phase3", "predictions": "predictions"}


def _kind_of(stage: str) -> str:
    return _STAGE_KIND.get(stage, "phase4")


def _payload(kind: str, day: dt.date, processors: Sequence[str], *, reason: str, subject: str = "",
             team: str = "") -> dict[str, Any]:  # fmt: skip
    if kind == "scrape":
        return {"scraper": SCRAPER, "game_id": subject, "game_date": day.isoformat(), "team": team}
    if kind == "registry":
        return {"task": f"resolve the {team} box-score name that may be {subject}", "player_lookup": subject,
                "team": team, "game_date": day.isoformat()}  # fmt: skip
    if kind == "phase4":
        return {"processors": list(processors), "analysis_date": day.isoformat(), "strict_mode": False}
    return {"game_date": day.isoformat(), "reason": reason, "processors": list(processors),
            "mode": "reprocess_specific_date"}  # fmt: skip


def _build(steps: Sequence[tuple[str, str, tuple[str, ...], dt.date, tuple[ItemKey, ...], dict[str, Any]]],
           settings: RerunSettings) -> list[Message]:  # fmt: skip
    messages = []
    order = {stage: n for n, stage in enumerate(dict.fromkeys(s[0] for s in steps), start=1)}
    for stage, kind, processors, day, items, payload in steps:
        messages.append(Message(
            key=f"{order[stage]}|{kind}|{'+'.join(processors)}|{day.isoformat()}", step=order[stage], stage=stage,
            kind=kind, processors=processors, data_date=day, payload=payload, items=items,
            destination=settings.destinations[kind],
        ))  # fmt: skip
    return messages


def plan_incident(store: Store, filters: Filters, incident_id: str, settings: RerunSettings, *,
                  now: dt.datetime, force: bool = False) -> Plan:  # fmt: skip
    """The messages that fix one incident's open items, in recovery order."""
    which = inc.IncidentId.parse(incident_id)
    items = inc.incident_items(store, filters, which)
    head = inc.incidents(store, filters, now=now, settled=True)
    row = head[head["incident_id"] == which.text]
    if row.empty or items.empty:
        raise BadInput(f"No item in view belongs to incident {which.text[:120]!r}.",
                       "Widen the dates or the filters, or choose an incident from the list.")  # fmt: skip
    info = row.iloc[0]
    open_items = items[items["open_in_incident"].astype(bool)]
    if open_items.empty:
        raise BadInput(f"Incident {which.text[:120]!r} has no open item: nothing to re-run.")
    keys = [ItemKey(str(r.source_table), str(r.processor_name), _date(r.item_date), str(r.entity_id))
            for r in open_items.itertuples(index=False)]  # fmt: skip
    every = tuple(keys)
    reason = f"{info['root_cause']} ({which.text})"
    steps: list[tuple[str, str, tuple[str, ...], dt.date, tuple[ItemKey, ...], dict[str, Any]]] = []
    listed = info["game_dates"] if isinstance(info["game_dates"], list) else []
    game_days = sorted(set(listed) or {d for d in (inc.as_date(info["game_date"]), inc.as_date(info["last_game_date"]))
                                       if d})  # fmt: skip
    if which.kind == "RAW_DATA_GAP":
        for day in game_days[:1]:
            tag = f"scrape:{which.subject}:{which.team}"
            steps.append(
                (
                    "re-scrape",
                    "scrape",
                    (tag,),
                    day,
                    every,
                    _payload("scrape", day, (), reason=reason, subject=which.subject, team=which.team),
                )
            )
    if which.kind == "NAME_UNRESOLVED":
        day = game_days[0] if game_days else min(k.item_date for k in keys)
        tag = f"registry:{which.subject}:{which.team}"
        steps.append(
            (
                "registry",
                "registry",
                (tag,),
                day,
                every,
                _payload("registry", day, (), reason=reason, subject=which.subject, team=which.team),
            )
        )
    by_stage: dict[tuple[int, str], dict[dt.date, dict[str, list[ItemKey]]]] = {}
    for key in keys:
        order = RECOVERY_STEP.get(key.processor_name, (6, "predictions"))
        by_stage.setdefault(order, {}).setdefault(key.item_date, {}).setdefault(key.processor_name, []).append(key)
    if which.kind in inc.CAUSES:  # phase 3 re-reads the game's date, whatever failed downstream
        phase3 = by_stage.setdefault((1, "phase 3"), {})
        for day in game_days:
            phase3.setdefault(day, {})
    for (_, stage), days in sorted(by_stage.items()):
        kind = _kind_of(stage)
        for day, per in sorted(days.items()):
            processors = tuple(sorted(per)) or ((PHASE3_PROCESSORS[0],) if kind == "phase3" else ())
            covered = tuple(k for p in per.values() for k in p) or (every if kind == "phase3" else ())
            steps.append((stage, kind, processors, day, covered,
                          _payload(kind, day, processors, reason=reason)))  # fmt: skip
    messages = _build(steps, settings)
    return _finish(store, Plan(tuple(messages), which.text, str(info["root_cause"])), settings, now=now, force=force)


def plan_processor(store: Store, filters: Filters, processor: str, settings: RerunSettings, *,
                   now: dt.datetime, force: bool = False) -> Plan:  # fmt: skip
    """One processor's re-run for every date in the filters where it has open correctable items."""
    f = filters.with_(processors=(processor,), correctable=("correctable",), statuses=OPEN_STATUSES)
    sql = q.relation(store, f) + "SELECT source_table, processor_name, item_date, entity_id FROM filtered"
    found = store.query(sql, q.params_of(f), label="reruns")
    if found.empty:
        raise BadInput(f"{processor[:80]} has no open correctable item in the range: nothing to re-run.")
    order = RECOVERY_STEP.get(processor, (6, "predictions"))
    kind = _kind_of(order[1])
    per_day: dict[dt.date, list[ItemKey]] = {}
    for r in found.itertuples(index=False):
        day = _date(r.item_date)
        per_day.setdefault(day, []).append(ItemKey(str(r.source_table), str(r.processor_name), day, str(r.entity_id)))
    reason = f"open correctable failures of {processor}"
    steps = [(order[1], kind, (processor,), day, tuple(keys), _payload(kind, day, (processor,), reason=reason))
             for day, keys in sorted(per_day.items())]  # fmt: skip
    return _finish(store, Plan(tuple(_build(steps, settings)), "", f"{processor}: {len(per_day)} date(s)"), settings,
                   now=now, force=force)  # fmt: skip


def _date(value: Any) -> dt.date:
    day = inc.as_date(value)
    if day is None:
        raise ValueError(f"not a date: {value!r}")
    return day


def _finish(store: Store, plan: Plan, settings: RerunSettings, *, now: dt.datetime, force: bool) -> Plan:
    """Leave out what a pending request covers (unless forced); mark every message with downstream steps."""
    pending = {} if force else pending_claims(store, plan.messages, settings, now=now, incident_id=plan.incident_id,
                                              source_fix=plan.fixes_its_source)  # fmt: skip
    kept: list[Message] = []
    skipped: list[Message] = []
    cascade = len(plan.steps) > 1
    for m in plan.messages:
        waiting = [c for c in m.claims if c in pending]
        left = tuple(p for p, c in zip(m.processors, m.claims, strict=True) if c not in pending)
        payload = {**m.payload}
        if m.kind in ("phase3", "phase4", "predictions"):
            payload["processors"] = list(left)
        msg = replace(m, processors=left or m.processors, payload=payload,
                      pending=tuple(sorted({pending[c] for c in waiting})))  # fmt: skip
        if not left:
            skipped.append(msg)
            continue
        if cascade:
            msg = replace(msg, payload={**msg.payload, "skip_downstream_trigger": True})
        kept.append(msg)
    return replace(plan, messages=tuple(kept), skipped=tuple(skipped), forced=force)


# -- what is pending --------------------------------------------------------------------------------

_LATEST = """
WITH latest AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY request_id, message_key ORDER BY at DESC, outcome_rank DESC) AS n
  FROM (
    SELECT *, CASE outcome WHEN 'claimed' THEN 0 ELSE 1 END AS outcome_rank
    FROM nba_processing.rerun_requests
    WHERE data_date BETWEEN @date_from AND @date_to {where}
  ) AS r
)
SELECT request_id, message_key, correlation_id, incident_id, step, stage, kind, processors, data_date,
  destination_type, destination, payload, items, outcome, message_id, error, actor, note, at
FROM latest WHERE n = 1"""


def _latest(store: Store, first: dt.date, last: dt.date, where: str = "", params: Mapping[str, Any] | None = None
            ) -> pd.DataFrame:  # fmt: skip
    if "nba_processing.rerun_requests" not in store.existing_tables():
        return pd.DataFrame()
    sql = _LATEST.format(where=where)
    return store.query(sql, {"date_from": first, "date_to": last, **(params or {})}, label="reruns")


def pending_claims(store: Store, messages: Sequence[Message], settings: RerunSettings, *, now: dt.datetime,
                   incident_id: str = "", source_fix: bool = False) -> dict[str, str]:  # fmt: skip
    """``processor|date`` -> the request id of a pending (or in-flight) request covering it. With ``source_fix``
    (the plan starts with a re-scrape or a registry fix), only this incident's own requests count: a run another
    incident asked for may start before this incident's data is fixed."""
    if not messages:
        return {}
    first, last = min(m.data_date for m in messages), max(m.data_date for m in messages)
    states = follow(store, Filters(date_from=first, date_to=last), settings, now=now)
    out: dict[str, str] = {}
    for r in states.itertuples(index=False):
        if r.state in ("pending", "sending", "running"):
            if source_fix and str(r.incident_id or "") != incident_id:
                continue  # another incident's run may come before this one's own fix: it settles nothing here
            for p in str(r.processors).split(","):
                out[f"{p}|{_date(r.data_date).isoformat()}"] = str(r.request_id)
    return out


# -- 2. send ---------------------------------------------------------------------------------------


@dataclass
class Sent:
    request_id: str
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(o["outcome"] in ("sent", "recorded") for o in self.outcomes)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [o for o in self.outcomes if o["outcome"] == "failed"]

    @property
    def duplicates(self) -> int:
        return sum(o["outcome"] == "duplicate" for o in self.outcomes)


Publisher = Callable[[Message, dict[str, str], RerunSettings], str]


def send(store: Store, plan: Plan, actor: Actor | None, *, note: str, settings: RerunSettings, now: dt.datetime,
         publish: Publisher | None = None) -> Sent:  # fmt: skip
    """Claim, send and record every message of the plan, in order (see the module's text)."""
    who = require_resolver(actor, what="request re-runs")
    text = (note or "").strip()
    if not text:
        raise BadInput("A re-run request needs a note: why it is asked for.", "Say what you found (--note TEXT).")
    if len(text) > 2000:
        raise BadInput(f"The note is {len(text):,} characters long; keep it under 2,000.")
    if not plan.messages:
        raise BadInput("Nothing to request: every step is pending already or nothing is open.")
    if len(plan.dates) > settings.max_dates:
        raise BadInput(
            f"This request spans {len(plan.dates)} dates; at most {settings.max_dates} go in one request.",
            "Narrow the dates (the sidebar, or --since/--until), or raise TRIAGE_RERUN_MAX_DATES.",
        )
    claimed_at = now
    started = time.monotonic()
    with store.transaction(label="reruns") as tx:
        # Taken inside the write: on DuckDB one writer of a file at a time, so the ids follow the order the claims
        # became visible in, and a claim that another one's look missed sorts after it.
        request_id = claim_id()
        rows = [_row(request_id, plan, m, n, who, text, "claimed", claimed_at) for n, m in enumerate(plan.messages)]
        items = pd.DataFrame(
            [{"request_id": request_id, "message_key": m.key, "source_table": k.source_table,
              "processor_name": k.processor_name, "item_date": k.item_date, "entity_id": k.entity_id}
             for m in plan.messages for k in m.items],
            columns=["request_id", "message_key", "source_table", "processor_name", "item_date", "entity_id"],
        )  # fmt: skip
        tx.insert_frame("nba_processing.rerun_requests", _frame(rows))
        if len(items):
            tx.insert_frame("nba_processing.rerun_request_items", items)
    took = time.monotonic() - started
    lost = _lost_races(store, plan, request_id, claimed_at, forced=plan.forced)
    if len(lost) < len(plan.messages):
        # A second look, once a claim taken just before ours but still being written would have landed (twice our
        # own write's time): it wins, and it sees ours as the later one, so of the two exactly one sends.
        time.sleep(min(max(SETTLE_FLOOR, 2 * took), SETTLE_CAP))
        lost = _lost_races(store, plan, request_id, claimed_at, forced=plan.forced)
    result = Sent(request_id)
    finals: list[dict[str, Any]] = []
    stop = ""
    try:
        for n, m in enumerate(plan.messages):
            row = _row(request_id, plan, m, n, who, text, "", now)
            if m.key in lost:
                row.update(outcome="duplicate", error=f"request {lost[m.key]} claimed it first")
            elif stop:
                row.update(outcome="failed", error=f"not sent: {stop}")
            else:
                attributes = {"correlation_id": row["correlation_id"], "trigger_source": TRIGGER_SOURCE,
                              "requested_by": who.name}  # fmt: skip
                try:
                    if m.destination.type == "none":
                        row.update(outcome="recorded")
                    else:
                        message_id = (publish or _publish)(m, attributes, settings)
                        row.update(outcome="sent", message_id=message_id)
                except SendFailed as exc:
                    row.update(outcome="failed", error=str(exc)[:1000])
                    stop = f"step {m.step} ({m.stage}) failed"
                except Exception as exc:  # whatever stops a send is its outcome, never a claim left hanging
                    row.update(outcome="failed", error=f"{type(exc).__name__}: {str(exc)[:900]}")
                    stop = f"step {m.step} ({m.stage}) failed"
            finals.append(row)
            result.outcomes.append(row)
    finally:  # interrupted half way (Ctrl-C, a killed process): what was not sent says so
        for n, m in enumerate(plan.messages[len(finals) :], start=len(finals)):
            row = _row(request_id, plan, m, n, who, text, "failed", now)
            row.update(error="not sent: the request was interrupted")
            finals.append(row)
            result.outcomes.append(row)
        store.insert_frame("nba_processing.rerun_requests", _frame(finals), label="reruns")
    return result


def _row(request_id: str, plan: Plan, m: Message, n: int, who: Actor, note: str, outcome: str, at: dt.datetime
         ) -> dict[str, Any]:  # fmt: skip
    correlation = f"{request_id}-{n + 1}"
    payload = {**m.payload, "correlation_id": correlation, "trigger_source": TRIGGER_SOURCE,
               "requested_by": who.name}  # fmt: skip
    return {
        "request_id": request_id, "message_key": m.key, "correlation_id": correlation,
        "incident_id": plan.incident_id or None, "step": m.step, "stage": m.stage, "kind": m.kind,
        "processors": ",".join(m.processors), "data_date": m.data_date, "destination_type": m.destination.type,
        "destination": m.destination.target, "payload": json.dumps(payload, sort_keys=True), "items": len(m.items),
        "outcome": outcome, "message_id": None, "error": None, "actor": who.name, "note": note, "at": at,
    }  # fmt: skip


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame.astype({"step": "int64", "items": "int64"})


#: How long a claim may take to be sent: claims older than this are pending requests (``pending_claims``), not races.
RACE_WINDOW = dt.timedelta(minutes=5)
#: The wait before a claim's second look: twice its own write's time, within these bounds (seconds).
SETTLE_FLOOR, SETTLE_CAP = 0.05, 15.0
_last_claim = 0
_claim_guard = threading.Lock()


def claim_id() -> str:
    """A request id that sorts in the order it was taken: 16 hex digits of the clock in nanoseconds (strictly
    increasing within the process, whatever the clock does), then 16 random ones. Claims race by these ids, never by
    the caller's ``now``: two resolvers pressing in the same second still have an order."""
    global _last_claim
    with _claim_guard:
        _last_claim = max(time.time_ns(), _last_claim + 1)
        stamp = _last_claim
    return f"{stamp:016x}{secrets.token_hex(8)}"


def _lost_races(store: Store, plan: Plan, request_id: str, at: dt.datetime, *, forced: bool = False
                ) -> dict[str, str]:  # fmt: skip
    """Messages whose processor and date an earlier claim (another request, in flight or sent) holds: the earliest
    claim by request id (``claim_id``) wins, whoever reads first (message key -> the winner's request id). A plan
    that starts with its own source fix only yields to claims of the same incident."""
    first, last = min(plan.dates), max(plan.dates)
    claims = store.query(
        """
SELECT request_id, COALESCE(incident_id, '') AS incident_id, processors, data_date,
  LOGICAL_OR(outcome IN ('failed', 'duplicate')) AS dropped, LOGICAL_OR(outcome <> 'claimed') AS finished
FROM nba_processing.rerun_requests
WHERE data_date BETWEEN @date_from AND @date_to AND at >= @window
GROUP BY request_id, COALESCE(incident_id, ''), processors, data_date""",
        {"date_from": first, "date_to": last, "window": at - RACE_WINDOW},
        label="reruns",
    )
    held: dict[str, str] = {}
    source_fix = plan.fixes_its_source
    for r in claims.itertuples(index=False):
        if bool(r.dropped) or str(r.request_id) == request_id or (forced and bool(r.finished)):
            continue
        if source_fix and str(r.incident_id) != plan.incident_id:
            continue  # as pending_claims: another incident's run does not wait for this one's fix
        for p in str(r.processors).split(","):
            c = f"{p}|{_date(r.data_date).isoformat()}"
            held[c] = min(held.get(c, str(r.request_id)), str(r.request_id))
    lost: dict[str, str] = {}
    for m in plan.messages:
        for c in m.claims:
            if c in held and held[c] < request_id:
                lost[m.key] = held[c]
    return lost


def _publish(m: Message, attributes: dict[str, str], settings: RerunSettings) -> str:
    body = json.dumps({**m.payload, **attributes}, sort_keys=True).encode()
    if m.destination.type == "pubsub":
        return _to_pubsub(settings.pubsub_project, m.destination.target, body, attributes, settings.timeout)
    return _to_http(m.destination.target, body, settings)


def _to_pubsub(project: str, topic: str, body: bytes, attributes: dict[str, str], timeout: float) -> str:
    from google.api_core import exceptions as gx
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    path = f"projects/{project}/topics/{topic}"
    try:
        client = pubsub_v1.PublisherClient()
        return str(client.publish(path, body, **attributes).result(timeout=timeout))
    except gx.NotFound:
        raise SendFailed(f"Pub/Sub topic {topic} does not exist in project {project}.",
                         "Check TRIAGE_RERUN_* and TRIAGE_PUBSUB_PROJECT.") from None  # fmt: skip
    except gx.PermissionDenied:
        raise SendFailed(f"Not allowed to publish to {path}.",
                         "Grant the dashboard's account roles/pubsub.publisher on the topic.") from None  # fmt: skip
    except TimeoutError:
        raise SendFailed(f"Pub/Sub did not confirm the message to {topic} within {timeout:g} s.",
                         "Recorded as failed: nothing is pending, so it can be asked again.") from None  # fmt: skip
    except gx.GoogleAPICallError as exc:
        raise SendFailed(f"Pub/Sub refused the message to {topic}: {str(exc)[:300]}") from None
    except Exception as exc:  # the client's futures raise their own timeout and transport errors
        if type(exc).__name__ == "TimeoutError":
            raise SendFailed(f"Pub/Sub did not confirm the message to {topic} within {timeout:g} s.",
                             "Recorded as failed: nothing is pending, so it can be asked again.") from None  # fmt: skip
        raise SendFailed(f"Publishing to {topic} failed: {type(exc).__name__}: {str(exc)[:300]}") from None


def _to_http(url: str, body: bytes, settings: RerunSettings) -> str:
    headers = {"Content-Type": "application/json", "User-Agent": "nba-triage"}
    if settings.http_audience:
        try:
            import google.auth.transport.requests
            import google.oauth2.id_token

            token = google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
                google.auth.transport.requests.Request(),
                                                          settings.http_audience)  # fmt: skip
        except Exception as exc:
            raise SendFailed(f"No ID token for {settings.http_audience}: {type(exc).__name__}: {str(exc)[:200]}",
                             "Run where the service account has roles/run.invoker.") from None  # fmt: skip
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as answer:
            text = answer.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        raise SendFailed(f"{url} answered {exc.code} {exc.reason}.",
                         "Recorded as failed: nothing is pending, so it can be asked again.") from None  # fmt: skip
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendFailed(
            f"{url} did not answer: {reason}.", "Recorded as failed: nothing is pending, so it can be asked again."
        ) from None
    try:
        answer_id = json.loads(text).get("message_id") or json.loads(text).get("execution_id") or ""
    except (ValueError, AttributeError):
        answer_id = ""
    return str(answer_id) or f"http-{uuid.uuid4().hex[:12]}"


# -- 3. follow -------------------------------------------------------------------------------------

_RUNS = """
SELECT h.processor_name, h.run_id, h.status, h.data_date, h.started_at, h.processed_at, h.trigger_message_id,
  JSON_VALUE(h.trigger_message_data, '$.correlation_id') AS correlation_id, TO_JSON_STRING(h.errors) AS errors,
  h.skip_reason
FROM nba_reference.processor_run_history AS h
WHERE h.data_date BETWEEN @date_from AND @date_to AND h.started_at >= @since"""

_ITEM_STATE = """,
asked AS (
  SELECT request_id, message_key, source_table, processor_name, item_date, entity_id
  FROM nba_processing.rerun_request_items
  WHERE item_date BETWEEN @date_from AND @date_to AND request_id IN UNNEST(@requests)
),
evidence AS (
  SELECT source_table, processor_name, analysis_date AS item_date, entity_id, verdict AS cause,
    COALESCE(game_id, '') AS game_id, COALESCE(team_abbr, '') AS team, TRUE AS current
  FROM nba_processing.failure_missing_games
  WHERE analysis_date BETWEEN @date_from AND @date_to AND verdict IN UNNEST(@causes)
  UNION ALL
  SELECT source_table, processor_name, item_date, entity_id, cause, game_id, team_abbr, FALSE
  FROM nba_processing.incident_links
  WHERE item_date BETWEEN @date_from AND @date_to
)
SELECT a.request_id, a.message_key, l.item_key, l.entity_id, l.status IN UNNEST(@open_statuses) AS is_open,
  l.correctable_class = 'correctable' AS correctable, l.last_seen,
  IF(l.status IN UNNEST(@settled_statuses), l.status_at, NULL) AS settled_at,
  e.cause, e.game_id, e.team, e.current
FROM asked AS a
JOIN labelled AS l
  ON l.source_table = a.source_table AND l.processor_name = a.processor_name AND l.item_date = a.item_date
  AND l.entity_id = a.entity_id
LEFT JOIN evidence AS e
  ON e.source_table = a.source_table AND e.processor_name = a.processor_name AND e.item_date = a.item_date
  AND e.entity_id = a.entity_id"""


def _still_open(msgs: pd.DataFrame, asked: pd.DataFrame) -> pd.DataFrame:
    """One row per asked item (``asked`` has one per item and evidence row), with whether it still waits for its
    request: open and, for a request made for an incident, still explained by the incident's cause (its current
    evidence names it; for a processor run: still correctable, and no cause ever named); for any other request,
    open and still correctable. An item that the fix turned into a permanent did-not-play is the re-run's business
    no more. The rules of ``lib.incidents.incident_items``' ``open_in_incident``, for every request in one read."""
    incident_of = dict(zip(msgs["request_id"], msgs["incident_id"], strict=False))
    parsed: dict[str, inc.IncidentId | None] = {}
    for text in {str(v) for v in incident_of.values() if isinstance(v, str) and v}:
        try:
            parsed[text] = inc.IncidentId.parse(text)
        except TriageError:
            parsed[text] = None  # an id this version cannot read: its items wait while open and correctable
    which = asked["request_id"].map(lambda r: parsed.get(str(incident_of.get(r) or "")))
    kind = which.map(lambda i: i.kind if i else "")
    subject = which.map(lambda i: i.subject if i else "")
    team = which.map(lambda i: i.team if i else "")
    current = asked["current"].astype("boolean").fillna(False).astype(bool)
    cause = asked["cause"].astype("string").fillna("")
    same_game = (asked["game_id"].astype("string").fillna("") == subject) & (
        (team == "") | (asked["team"].astype("string").fillna("") == team)
    )
    same_name = (asked["entity_id"].astype("string") == subject) & (asked["team"].astype("string").fillna("") == team)
    by_name = kind == "NAME_UNRESOLVED"
    names_it = current & (cause == kind) & ((by_name & same_name) | (~by_name & same_game))
    frame = asked.assign(names_it=names_it, has_cause=cause != "", kind=kind)
    key = ["request_id", "message_key", "item_key"]
    items = frame.groupby(key, sort=False).agg(
        is_open=("is_open", "first"), correctable=("correctable", "first"), last_seen=("last_seen", "first"),
        settled_at=("settled_at", "first"), names_it=("names_it", "any"), has_cause=("has_cause", "any"),
        kind=("kind", "first"),
    ).reset_index()  # fmt: skip
    is_open = items["is_open"].astype("boolean").fillna(False).astype(bool)
    correctable = items["correctable"].astype("boolean").fillna(False).astype(bool)
    by_cause = items["kind"].isin(inc.CAUSES)
    by_run = items["kind"] == inc.RUN
    run_waits = by_run & correctable & ~items["has_cause"]
    items["waiting"] = is_open & ((by_cause & items["names_it"]) | run_waits | (~by_cause & ~by_run & correctable))
    return items


def follow(store: Store, filters: Filters, settings: RerunSettings, *, now: dt.datetime,
           incident_id: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Every message of the requests for the filters' dates (or one incident's), newest first, with its state."""
    first, last = filters.date_from or dt.date(1, 1, 1), filters.date_to or dt.date(9999, 12, 31)
    where, params = ("AND incident_id = @incident", {"incident": incident_id}) if incident_id else ("", {})
    msgs = _latest(store, first, last, where, params)
    if msgs.empty:
        return pd.DataFrame(columns=[*_FOLLOW_COLUMNS])
    msgs["data_date"] = msgs["data_date"].map(_date)
    msgs["at"] = pd.to_datetime(msgs["at"], utc=True)
    lo, hi = min(msgs["data_date"]), max(msgs["data_date"])
    runs = pd.DataFrame()
    if "nba_reference.processor_run_history" in store.existing_tables():
        runs = store.query(_RUNS, {"date_from": lo, "date_to": hi, "since": msgs["at"].min().to_pydatetime()},
                           label="reruns")  # fmt: skip
    # The items each message should settle, as they stand now (items of any date: the requests' own).
    item_lo = store.query(
        "SELECT MIN(item_date) AS a, MAX(item_date) AS b FROM nba_processing.rerun_request_items "
        "WHERE item_date BETWEEN @x AND @y AND request_id IN UNNEST(@requests)",
        {"x": dt.date(1, 1, 1), "y": dt.date(9999, 12, 31), "requests": sorted(set(msgs["request_id"]))},
        label="reruns",
    ).iloc[0]
    states = pd.DataFrame(columns=["request_id", "message_key", "asked", "still_open", "last_seen", "settled_at"])
    if not pd.isna(item_lo["a"]):
        f = Filters(date_from=_date(item_lo["a"]), date_to=_date(item_lo["b"]), hide_expected=False)
        sql, _ = q.labelled_sql(store, f)
        state_params: dict[str, Any] = {**q.params_of(f), "requests": sorted(set(msgs["request_id"])),
                                        "causes": list(inc.CAUSES), "open_statuses": list(OPEN_STATUSES),
                                        "settled_statuses": list(SETTLED_STATUSES)}  # fmt: skip
        asked = store.query(sql + _ITEM_STATE, state_params, label="reruns")
        if len(asked):
            items = _still_open(msgs, asked)
            items["settled_at"] = pd.to_datetime(items["settled_at"], utc=True)
            states = (
                items.groupby(["request_id", "message_key"])
                .agg(asked=("item_key", "size"), still_open=("waiting", "sum"), last_seen=("last_seen", "max"),
                     settled_at=("settled_at", "max"))
                .reset_index()
            )  # fmt: skip
    merged = msgs.merge(states, how="left", on=["request_id", "message_key"])
    by_day = _runs_by_day(runs)
    out = []
    for record in merged.to_dict("records"):
        r = {str(k): v for k, v in record.items()}
        run = _answer(r, by_day)
        state, detail = _state(r, run, settings, now)
        out.append({**{c: r.get(c) for c in _MESSAGE_COLUMNS}, "asked": _int(r.get("asked")),
                    "still_open": _int(r.get("still_open")), "state": state, "detail": detail,
                    "run_id": None if run is None else run["run_id"],
                    "run_status": None if run is None else run["status"],
                    "run_started_at": None if run is None else run["started_at"],
                    "settled_at": _settled_at(r) if state == "settled" else None})  # fmt: skip
    frame = pd.DataFrame(out, columns=[*_FOLLOW_COLUMNS])
    return frame.sort_values(
        ["at", "request_id", "step", "data_date"], ascending=[False, True, True, True]
    ).reset_index(drop=True)


_MESSAGE_COLUMNS = ("request_id", "message_key", "correlation_id", "incident_id", "step", "stage", "kind",
                    "processors", "data_date", "destination_type", "destination", "payload", "items", "outcome",
                    "message_id", "error", "actor", "note", "at")  # fmt: skip
_FOLLOW_COLUMNS = (*_MESSAGE_COLUMNS, "asked", "still_open", "state", "detail", "run_id", "run_status",
                   "run_started_at", "settled_at")  # fmt: skip


def _settled_at(r: Mapping[str, Any]) -> pd.Timestamp | None:
    """When a settled message's last item was settled (None when its items settled before it was asked for, as a
    request made from an old page would be, or when none of them carries a settling time)."""
    value = r.get("settled_at")
    if value is None or pd.isna(value):
        return None
    at = pd.Timestamp(value)
    return at if at >= r["at"] else None


def _int(value: Any) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


RunsByDay = dict[dt.date, list[dict[str, Any]]]


def _runs_by_day(runs: pd.DataFrame) -> RunsByDay:
    """The runs as records per data date, oldest start first (what ``_answer`` looks through)."""
    out: RunsByDay = {}
    if runs.empty:
        return out
    frame = runs.assign(started_at=pd.to_datetime(runs["started_at"], utc=True)).sort_values("started_at")
    for record in frame.to_dict("records"):
        out.setdefault(_date(record["data_date"]), []).append({str(k): v for k, v in record.items()})
    return out


def _text(value: Any) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _answer(r: Mapping[str, Any], runs: RunsByDay) -> Mapping[str, Any] | None:
    """The run that answered a message: by message id, then correlation id, then a run of its processors for its
    date that started after it (the latest of the first kind that matches)."""
    if r["outcome"] not in ("sent", "recorded"):
        return None
    same_day = runs.get(_date(r["data_date"]), [])
    if not same_day:
        return None
    message_id, correlation = _text(r["message_id"]), str(r["correlation_id"])
    processors = set(str(r["processors"]).split(","))
    for match in (
        lambda run: message_id is not None and _text(run["trigger_message_id"]) == message_id,
        lambda run: _text(run["correlation_id"]) == correlation,
        lambda run: run["processor_name"] in processors and run["started_at"] >= r["at"],
    ):
        hits = [run for run in same_day if match(run)]
        if hits:
            return hits[-1]
    return None


def _state(r: Mapping[str, Any], run: Mapping[str, Any] | None, settings: RerunSettings, now: dt.datetime
           ) -> tuple[str, str]:  # fmt: skip
    outcome = r["outcome"]
    if outcome == "failed":
        return "failed", str(r.get("error") or "")
    if outcome == "duplicate":
        return "duplicate", str(r.get("error") or "")
    if outcome == "claimed":
        if now - r["at"].to_pydatetime() > RACE_WINDOW * 3:
            return "failed", "claimed but never sent: the sender stopped before it could say how it went"
        return "sending", "claimed, no outcome recorded yet"
    asked, still_open = _int(r.get("asked")), _int(r.get("still_open"))
    if asked and not still_open:
        return "settled", f"all {asked} item(s) it should settle are settled"
    if run is None:
        waited = now - r["at"].to_pydatetime()
        if waited > settings.stale_after:
            hours = waited.total_seconds() / 3600
            return "stale", f"no run of it after {hours:.0f} h"
        return "pending", "waiting for a run"
    status = str(run["status"])
    if status == "running":
        return "running", f"run {run['run_id']} started {pd.Timestamp(run['started_at']):%Y-%m-%d %H:%M} UTC"
    if status in ("failed", "partial"):
        errors = str(run.get("errors") or "") or str(run.get("skip_reason") or "")
        return "still failing", f"run {run['run_id']} {status}: {errors[:300]}"
    last_seen = r.get("last_seen")
    if last_seen is not None and not pd.isna(last_seen) and pd.Timestamp(last_seen) > pd.Timestamp(run["started_at"]):
        return "still failing", f"run {run['run_id']} recorded {still_open} of its item(s) again"
    return "run seen", f"run {run['run_id']} {status}; {still_open} of {asked} item(s) still open"


def request_state(states: Sequence[str]) -> str:
    """A request's state from its messages'."""
    live = [s for s in states if s != "duplicate"] or list(states)
    if live and all(s == "settled" for s in live):
        return "settled"
    for state in ("still failing", "stale", "failed", "sending", "pending", "running", "run seen"):
        if state in live:
            return state
    return live[0] if live else "duplicate"


REQUEST_COLUMNS = ("request_id", "at", "actor", "incident_id", "note", "messages", "sent", "dates", "state",
                   "settled_at", "hours_to_settle")  # fmt: skip


def requests(frame: pd.DataFrame) -> pd.DataFrame:
    """``follow``'s messages, one row per request, newest first: who, when, what, its state, and for a settled
    request when the last of its items that were settled (RESOLVED or PERMANENT) was, and the hours from the
    request to then. Items that stopped waiting because a new verdict no longer names the cause (they moved to
    another incident) settle a request without a time of their own; a request with only those is untimed."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in frame.to_dict("records"):
        groups.setdefault(str(record["request_id"]), []).append({str(k): v for k, v in record.items()})
    rows = []
    for request_id, msgs in groups.items():
        at = min(m["at"] for m in msgs)
        state = request_state([str(m["state"]) for m in msgs])
        ends = [m.get("settled_at") for m in msgs if m["state"] == "settled"]
        known = [pd.Timestamp(e) for e in ends if e is not None and not pd.isna(e)]
        settled_at = max(known) if state == "settled" and known else None
        rows.append({
            "request_id": request_id, "at": at, "actor": msgs[0]["actor"], "incident_id": msgs[0]["incident_id"],
            "note": msgs[0]["note"], "messages": len(msgs),
            "sent": sum(m["outcome"] in ("sent", "recorded") for m in msgs),
            "dates": len({m["data_date"] for m in msgs}), "state": state, "settled_at": settled_at,
            "hours_to_settle": (settled_at - at).total_seconds() / 3600 if settled_at is not None else None,
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))
    out["hours_to_settle"] = pd.to_numeric(out["hours_to_settle"]).astype(float)
    out["settled_at"] = pd.to_datetime(out["settled_at"], utc=True)
    return out.sort_values("at", ascending=False, kind="stable").reset_index(drop=True)


def settle_hours(asked: pd.DataFrame) -> dict[str, Any]:
    """Over ``requests``' settled requests: how many, how many timed, and the nearest-rank median and 90th
    percentile of the hours from request to settlement (None without a timed one), as Settling computes them."""
    settled = asked[asked["state"] == "settled"] if len(asked) else asked
    hours = settled.get("hours_to_settle", pd.Series(dtype=float)).dropna().astype(float)
    ones = pd.Series(1, index=hours.index)
    return {"settled": len(settled), "timed": len(hours), "median": nearest_rank(hours, ones, 0.5),
            "p90": nearest_rank(hours, ones, 0.9)}  # fmt: skip


_ITEM_REQUESTS = """
SELECT r.request_id, r.step, r.stage, r.data_date, r.processors, r.destination_type, r.outcome, r.message_id,
  r.error, r.actor, r.note, r.at
FROM nba_processing.rerun_request_items AS i
JOIN nba_processing.rerun_requests AS r
  ON r.request_id = i.request_id AND r.message_key = i.message_key
WHERE i.item_date = @item_date AND i.source_table = @source_table AND i.processor_name = @processor_name
  AND i.entity_id = @entity_id AND r.data_date BETWEEN @first AND @last AND r.outcome <> 'claimed'
ORDER BY r.at DESC, r.step"""


def item_requests(store: Store, key: ItemKey) -> pd.DataFrame:
    """The re-run messages asked for one item (its history's "re-run requested by ..."), newest first."""
    if "nba_processing.rerun_request_items" not in store.existing_tables():
        return pd.DataFrame()
    params = {"item_date": key.item_date, "source_table": key.source_table, "processor_name": key.processor_name,
              "entity_id": key.entity_id, "first": dt.date(1, 1, 1), "last": dt.date(9999, 12, 31)}  # fmt: skip
    return store.query(_ITEM_REQUESTS, params, label="reruns")
