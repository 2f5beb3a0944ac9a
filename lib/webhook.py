"""Post a message to a Slack-compatible incoming webhook: a timeout, bounded retries, and a URL never shown.

The URL of an incoming webhook is a secret (whoever has it can post to the channel), so nothing here
prints, logs or raises it: messages name only its host. Retried: timeouts, dropped connections, 429 and
5xx answers, with exponential backoff (honouring Retry-After up to the backoff's ceiling). Not retried: any
other 4xx (the hook refuses the message; trying again would not change that).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.errors import TriageError

MAX_ATTEMPTS = 4
TIMEOUT_SECONDS = 10.0
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


class PostFailed(TriageError):
    """The webhook did not take the message."""


@dataclass(frozen=True)
class Posted:
    attempts: int
    status: int


def where(url: str) -> str:
    """The part of a webhook URL that may be shown: its scheme and host."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise PostFailed("The webhook URL is not an http(s) address.",
                         "Set TRIAGE_WEBHOOK_URL to the incoming webhook's https:// URL.")  # fmt: skip
    return url.strip()


def post(
    url: str,
    payload: dict[str, Any],
    *,
    timeout: float = TIMEOUT_SECONDS,
    attempts: int = MAX_ATTEMPTS,
    backoff: float = BACKOFF_SECONDS,
    log: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Posted:
    """POST ``payload`` as JSON; retry what may pass on a second try; :class:`PostFailed` otherwise."""
    url = check_url(url)
    host = where(url)
    body = json.dumps(payload).encode()
    problem = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "nba-triage"}
        )
        wait = min(backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return Posted(attempt, int(answer.status))
        except urllib.error.HTTPError as exc:
            problem = f"{host} answered {exc.code} {exc.reason}"
            if exc.code != 429 and exc.code < 500:
                raise PostFailed(f"The digest was not posted: {problem}.",
                                 "Check that the webhook still exists and accepts JSON posts.") from None  # fmt: skip
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            if retry_after and retry_after.isdigit():
                wait = min(float(retry_after), MAX_BACKOFF_SECONDS)
        except TimeoutError:
            problem = f"{host} did not answer within {timeout:g} s"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            problem = f"could not reach {host} ({type(reason).__name__}: {str(reason)[:120]})"
            if isinstance(reason, TimeoutError):
                problem = f"{host} did not answer within {timeout:g} s"
        if attempt < attempts:
            log(f"Posting the digest: {problem}; trying again in {wait:g} s (attempt {attempt + 1} of {attempts}).")
            sleep(wait)
    raise PostFailed(f"The digest was not posted after {attempts} attempts: {problem}.",
                     "The job's work is done and the digest file is written; post it again later.")  # fmt: skip
