"""The nightly job: classify what is new, auto-resolve what the data now supports, sync statuses, then tell
the team (a digest in Markdown and JSON, and optionally a Slack-compatible webhook).

Idempotent: a second run classifies, resolves and syncs nothing and writes the same digest. Each step is
its own transaction(s), so a failure keeps what finished; the post is the last step, and a refused post
loses nothing (the digest files are written first). Every run is recorded in the operations log.

Exit codes, for schedulers: 0 done; 3 done, but new regressions or new correctable work exceed the
configured thresholds; 4 done, but the digest could not be posted; 1 the job failed; 2 bad arguments.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lib import briefing, classification, operations, reruns, resolution, webhook, workqueue
from lib.classifier import ClassifierConfig
from lib.errors import TriageError
from lib.model import CHANGE_KINDS, Actor, Clock, Filters, Page
from lib.store import queries as q
from lib.store.base import Store

EXIT_DONE, EXIT_FAILED, EXIT_ATTENTION, EXIT_NOT_POSTED = 0, 1, 3, 4
TOP_WORK = 10
MASS_FACTOR, MASS_MINIMUM = 3.0, 20

Log = Callable[[str], None]


@dataclass(frozen=True)
class Thresholds:
    """Exit with EXIT_ATTENTION when more than this many items regressed / became correctable work."""

    new_regressions: int | None = None
    new_correctable: int | None = None

    def exceeded(self, counts: dict[str, int]) -> list[str]:
        out = []
        if self.new_regressions is not None and counts["regressed"] > self.new_regressions:
            out.append(f"{counts['regressed']:,} new regressions (threshold {self.new_regressions:,})")
        if self.new_correctable is not None and counts["new_correctable"] > self.new_correctable:
            out.append(f"{counts['new_correctable']:,} new correctable items (threshold {self.new_correctable:,})")
        return out


@dataclass
class Result:
    started_at: dt.datetime
    since: dt.date | None
    until: dt.date | None
    #: The dates the digest's links cover: the job's range, or the data's first and last date.
    link_from: dt.date | None = None
    link_to: dt.date | None = None
    classified: int = 0
    auto_resolved: int = 0
    synced: int = 0
    brief: briefing.Briefing | None = None
    top_work: pd.DataFrame = field(default_factory=pd.DataFrame)
    mass_dates: pd.DataFrame = field(default_factory=pd.DataFrame)
    new_regressions: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Re-run requests of the range, one row per request, with their states (lib/reruns.py).
    rerun_requests: pd.DataFrame = field(default_factory=pd.DataFrame)
    exceeded: list[str] = field(default_factory=list)
    digest_files: list[str] = field(default_factory=list)
    posted: str = "not configured"
    #: Why the digest's files could not be written ('' when they were, or were not asked for).
    digest_problem: str = ""
    problem: str = ""
    failed_step: str = ""

    @property
    def exit_code(self) -> int:
        if self.failed_step:
            return EXIT_FAILED
        if self.posted.startswith("failed") or self.digest_problem:
            return EXIT_NOT_POSTED
        return EXIT_ATTENTION if self.exceeded else EXIT_DONE

    @property
    def outcome(self) -> str:
        return {EXIT_DONE: "done", EXIT_FAILED: "failed", EXIT_ATTENTION: "attention",
                EXIT_NOT_POSTED: "not posted"}[self.exit_code]  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """The one JSON line a scheduler reads."""
        return {
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "started_at": self.started_at.isoformat(),
            "classified": self.classified,
            "auto_resolved": self.auto_resolved,
            "synced_rows": self.synced,
            "changes": dict(self.brief.counts) if self.brief else None,
            "compared_with": self.brief.since.isoformat() if self.brief else None,
            "thresholds_exceeded": self.exceeded,
            "digest": self.digest_files or (f"failed: {self.digest_problem}" if self.digest_problem else []),
            "webhook": self.posted,
            **({"failed_step": self.failed_step, "error": self.problem} if self.failed_step else {}),
        }


# -- links into the dashboard ------------------------------------------------------------------------


def link(base: str | None, page: str, params: dict[str, str]) -> str | None:
    if not base:
        return None
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
    return f"{base.rstrip('/')}/{page}" + (f"?{query}" if query else "")


def _range_params(since: dt.date | None, until: dt.date | None) -> dict[str, str]:
    return {"from": since.isoformat() if since else "", "to": until.isoformat() if until else ""}


def change_link(base: str | None, kind: str, at: dt.datetime, since: dt.date | None, until: dt.date | None
                ) -> str | None:  # fmt: skip
    stamp = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return link(base, "failures", {**_range_params(since, until), "changed": kind, "since": stamp})


# -- the job -------------------------------------------------------------------------------------------


def _mass_dates(store: Store, filters: Filters) -> pd.DataFrame:
    """Dates with at least MASS_FACTOR times the range's median items per date (and MASS_MINIMUM items)."""
    cube = q.dates_of(q.summary(store, filters))
    shown = cube[~cube["is_expected"]] if filters.hide_expected else cube
    per_day = pd.DataFrame(shown.groupby("item_date", as_index=False)["items"].sum())
    if per_day.empty:
        return per_day
    floor = max(MASS_MINIMUM, MASS_FACTOR * float(per_day["items"].median()))
    heavy = per_day[per_day["items"] >= floor].sort_values(["items", "item_date"], ascending=[False, True])
    return pd.DataFrame(heavy.head(10).reset_index(drop=True))


def run(
    store: Store,
    *,
    actor: Actor | None,
    now: dt.datetime,
    since: dt.date | None = None,
    until: dt.date | None = None,
    compare_to: dt.datetime | None = None,
    thresholds: Thresholds = Thresholds(),
    config: ClassifierConfig | None = None,
    log: Log = lambda _: None,
    progress: classification.Progress = classification._quiet,
    clock: Clock | None = None,
) -> Result:
    """Classify, auto-resolve, sync and brief; the digest is written by :func:`write_digest`. A step that
    fails stops the job with ``failed_step`` set; what earlier steps did is kept. ``actor`` (``system`` where it
    is configured, or a person) must be a resolver: it is checked before anything is done. With ``clock`` the
    classification and the auto-resolve stamp their verdict changes and events when they write them
    (``lib.model.stamp``); the digest's comparison point stays 24 hours before the job's start (nights a day apart
    compare back to back), and its "now" is the data as it is when the digest is made, those writes included."""
    who = operations.check("nightly", actor)
    result = Result(started_at=now, since=since, until=until)
    compare_to = briefing.comparison_point(now, compare_to)
    step = "nightly"
    try:
        with operations.logged(store, "nightly", who, origin="nightly", date_from=since, date_to=until) as op:
            step = "classify"
            log("Classifying what is new")
            report = classification.run(store, actor=who, now=now, config=config, since=since, until=until,
                                        progress=progress, origin="nightly", clock=clock)  # fmt: skip
            result.classified = report.items
            step = "autoresolve"
            log("Auto-resolving what the data now supports (re-classifies the range from today's evidence)")
            _, result.auto_resolved = resolution.autoresolve(store, actor=who, now=now, since=since, until=until,
                                                             config=config, progress=progress, origin="nightly",
                                                             clock=clock)  # fmt: skip
            step = "sync-status"
            log("Bringing the failure rows' statuses in step")
            result.synced = resolution.sync_statuses(store, actor=who, since=since, until=until, origin="nightly")
            step = "digest"
            log("Working out what changed")
            view = Filters(date_from=since, date_to=until)
            result.brief = briefing.brief(store, view, now=now, since=compare_to)
            result.new_regressions = q.list_items(
                store, view.with_(changed="regressed", changed_since=compare_to), Page(1, 20, "last seen")
            )
            result.top_work = workqueue.plan(store, view).head(TOP_WORK)
            result.mass_dates = _mass_dates(store, view)
            try:
                rerun_settings = reruns.RerunSettings.from_env()
            except ValueError as exc:
                raise TriageError(str(exc), "Fix the TRIAGE_RERUN_* settings.") from None
            result.rerun_requests = reruns.requests(reruns.follow(store, view, rerun_settings, now=now))
            result.exceeded = thresholds.exceeded(result.brief.counts)
            extent = q.bounds(store)
            result.link_from, result.link_to = since or extent.first_date, until or extent.last_date
            op.summary = [
                f"classified {result.classified:,}, auto-resolved {result.auto_resolved:,}, "
                f"synced {result.synced:,} rows.",
                "changes since " + compare_to.strftime("%Y-%m-%d %H:%M UTC") + ": "
                + ", ".join(f"{k} {v:,}" for k, v in result.brief.counts.items()) + ".",
            ]  # fmt: skip
    except TriageError as exc:
        result.failed_step, result.problem = step, exc.what + (f" {exc.todo}" if exc.todo else "")
    return result


# -- the digest ----------------------------------------------------------------------------------------


def _fmt_delta(n: int) -> str:
    return f"+{n:,}" if n > 0 else (f"{n:,}" if n < 0 else "±0")


def digest_json(result: Result, *, dashboard: str | None) -> dict[str, Any]:
    b = result.brief
    assert b is not None
    return {
        "generated_at": result.started_at.isoformat(),
        "range": {
            "since": result.since.isoformat() if result.since else None,
            "until": result.until.isoformat() if result.until else None,
        },
        "compared_with": b.since.isoformat(),
        "job": {"classified": result.classified, "auto_resolved": result.auto_resolved, "synced_rows": result.synced},
        "changes": {
            kind: {
                "label": CHANGE_KINDS[kind],
                "items": b.counts[kind],
                "delta": b.delta(kind),
                "link": change_link(dashboard, kind, b.since, result.link_from, result.link_to),
            }
            for kind in CHANGE_KINDS
        },
        "kpis": {
            name: {"now": getattr(b.kpis_now, name), "then": getattr(b.kpis_then, name)}
            for name in ("items", "unresolved", "correctable", "uncorrectable", "unclassified")
        },
        "settled_by": b.settled_by.to_dict("records"),
        "new_regressions": [
            {"key": r["key"], "last_seen": str(r["last_seen"]), "failure_type": r["failure_type"]}
            for _, r in result.new_regressions.iterrows()
        ],
        "top_correctable_work": json.loads(result.top_work.to_json(orient="records", date_format="iso")),
        "mass_failure_dates": [
            {"date": str(d), "items": int(n), "link": link(dashboard, "failures", _range_params(d, d))}
            for d, n in zip(result.mass_dates.get("item_date", []), result.mass_dates.get("items", []), strict=True)
        ],
        "rerun_requests": _rerun_digest(result.rerun_requests),
        "thresholds_exceeded": result.exceeded,
        "dashboard": dashboard,
    }


def _rerun_digest(frame: pd.DataFrame) -> dict[str, Any]:
    """Re-run requests by state, and the ones that need a look (stale, still failing, failed) in full."""
    counts = {str(k): int(v) for k, v in frame["state"].value_counts().items()} if len(frame) else {}
    look = frame[frame["state"].isin(["stale", "still failing", "failed"])] if len(frame) else frame
    return {
        "by_state": counts,
        "time_to_settle": reruns.settle_hours(frame) if len(frame) else {},
        "attention": [
            {"request_id": str(r["request_id"]), "state": str(r["state"]), "incident_id": r["incident_id"],
             "asked_by": str(r["actor"]), "asked_at": pd.Timestamp(r["at"]).isoformat(), "note": str(r["note"])}
            for r in look.to_dict("records")
        ],
    }  # fmt: skip


def _what(task: dict[str, Any]) -> str:
    """What a task of the plan is about: its game, its player (a registry name) or its processor."""
    return str(task.get("game_id") or task.get("player") or task.get("processor_name") or "")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")[:120]


def digest_markdown(data: dict[str, Any]) -> str:
    since = data["compared_with"][:16].replace("T", " ")
    rng = data["range"]
    if rng["since"] or rng["until"]:
        scope = f"Item dates {rng['since'] or 'from the first'} to {rng['until'] or 'the last'}"
    else:
        scope = "All item dates"
    lines = [f"# Failure triage: what changed since {since} UTC", "",
             f"{scope}; expected categories (INSUFFICIENT_DATA and the like) set aside. "
             f"Generated {data['generated_at'][:16].replace('T', ' ')} UTC.", ""]  # fmt: skip
    if data["thresholds_exceeded"]:
        lines += ["**Needs attention:** " + "; ".join(data["thresholds_exceeded"]) + ".", ""]
    job = data["job"]
    lines += [
        f"The job classified {job['classified']:,} new item(s), auto-resolved {job['auto_resolved']:,} and brought "
        f"{job['synced_rows']:,} failure row(s) in step.",
        "",
        "| Change | Items | vs the period before |",
        "|---|---:|---:|",
    ]
    for change in data["changes"].values():
        label = f"[{change['label']}]({change['link']})" if change["link"] else change["label"]
        lines.append(f"| {label} | {change['items']:,} | {_fmt_delta(change['delta'])} |")
    lines += ["", "| KPI | Now | Then |", "|---|---:|---:|"]
    for name, v in data["kpis"].items():
        lines.append(f"| {name} | {v['now']:,} | {v['then']:,} |")
    if data["settled_by"]:
        lines += ["", "Settled by: " + ", ".join(f"{_cell(r['who'])} {r['items']:,} {r['status'].lower()}"
                                                 for r in data["settled_by"]) + "."]  # fmt: skip
    if data["new_regressions"]:
        lines += ["", "## New regressions", ""]
        lines += [f"- `{_cell(r['key'])}` ({r['failure_type']}, recorded again {r['last_seen'][:16]})"
                  for r in data["new_regressions"]]  # fmt: skip
    if data["top_correctable_work"]:
        lines += ["", "## Top correctable work", "", "| Step | Task | Game / player / processor | Team | Items |",
                  "|---|---|---|---|---:|"]  # fmt: skip
        for t in data["top_correctable_work"]:
            lines.append(f"| {_cell(str(t.get('step') or ''))} | {_cell(t['task'])} | {_cell(_what(t))} | "
                         f"{_cell(t.get('team') or '')} | {t['items']:,} |")  # fmt: skip
    requests = data.get("rerun_requests") or {}
    if requests.get("by_state"):
        lines += [
            "",
            "## Re-run requests",
            "",
            "By state: " + ", ".join(f"{s} {n:,}" for s, n in sorted(requests["by_state"].items())) + ".",
        ]
        timed = requests.get("time_to_settle") or {}
        if timed.get("timed"):
            spread = f"median {timed['median']:.1f} h, 90th percentile {timed['p90']:.1f} h"
            lines += ["", f"Settled by re-run: {timed['settled']:,}; from request to settlement, {spread} "
                          f"({timed['timed']:,} timed)."]  # fmt: skip
        for r in requests["attention"][:20]:
            lines.append(
                f"- **{r['state']}**: {_cell(r['incident_id'] or 'processor re-run')}, asked by "
                f"{_cell(r['asked_by'])} {r['asked_at'][:16].replace('T', ' ')} UTC ({_cell(r['note'])})"
            )
    if data["mass_failure_dates"]:
        lines += ["", "## Mass-failure dates", ""]
        for d in data["mass_failure_dates"]:
            label = f"[{d['date']}]({d['link']})" if d["link"] else d["date"]
            lines.append(f"- {label}: {d['items']:,} items")
    if data["dashboard"]:
        lines += ["", f"Open the dashboard: {data['dashboard']}"]
    return "\n".join(lines) + "\n"


def slack_payload(data: dict[str, Any]) -> dict[str, Any]:
    """The digest as a Slack-compatible message: ``text`` (every client) and ``blocks`` (Slack)."""
    since = data["compared_with"][:16].replace("T", " ")
    counts = ", ".join(f"{c['label'].lower()} {c['items']:,} ({_fmt_delta(c['delta'])})"
                       for c in data["changes"].values())  # fmt: skip
    text = f"Failure triage since {since} UTC: {counts}."
    if data["thresholds_exceeded"]:
        text = ":warning: " + "; ".join(data["thresholds_exceeded"]) + ". " + text

    def mrkdwn(change: dict[str, Any]) -> str:
        label = f"<{change['link']}|{change['label']}>" if change["link"] else change["label"]
        return f"*{label}*\n{change['items']:,} ({_fmt_delta(change['delta'])})"

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Failure triage since {since} UTC"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": mrkdwn(c)} for c in data["changes"].values()]},
    ]
    if data["thresholds_exceeded"]:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": ":warning: " + "; ".join(data["thresholds_exceeded"])},
            }
        )
    if data["top_correctable_work"]:
        tasks = "\n".join(f"• {t.get('step') or ''} {t['task']}: {_what(t)} ({t['items']:,} items)"
                          for t in data["top_correctable_work"][:5])  # fmt: skip
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Top correctable work*\n" + tasks}})
    return {"text": text, "blocks": blocks}


def write_digest(result: Result, path: Path, *, dashboard: str | None, log: Log = lambda _: None) -> dict[str, Any]:
    """``path`` (.md) and the same name with .json; returns the JSON form. A file that cannot be written is
    recorded on ``result`` (the job's work is kept, and the digest can still be posted)."""
    data = digest_json(result, dashboard=dashboard)
    markdown = path if path.suffix == ".md" else path.with_suffix(path.suffix + ".md")
    as_json = markdown.with_suffix(".json")
    try:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(digest_markdown(data), encoding="utf-8")
        as_json.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        result.digest_problem = f"the digest could not be written to {markdown}: {exc.strerror or exc}"
        log(f"error: {result.digest_problem}")
        return data
    result.digest_files = [str(markdown), str(as_json)]
    return data


def post_digest(result: Result, data: dict[str, Any], url: str, *, log: Log, **kw: Any) -> None:
    """Post the digest; a failure is recorded on ``result`` (the job's work and files are already kept)."""
    try:
        posted = webhook.post(url, slack_payload(data), log=log, **kw)
        result.posted = f"posted to {webhook.where(url)} (attempt {posted.attempts})"
    except webhook.PostFailed as exc:
        result.posted = f"failed: {exc.what}"
        log(f"error: {exc.what}  {exc.todo}")
