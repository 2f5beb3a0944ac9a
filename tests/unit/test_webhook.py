"""Posting the digest to a webhook: a real HTTP server on loopback, answering as each case scripts it."""

from __future__ import annotations

import pytest

from lib import webhook
from tests.servers import HookServer, free_port

PAYLOAD = {"text": "3 new regressions", "blocks": []}


def _post(url: str, **kw: object) -> webhook.Posted:
    log: list[str] = []
    kw.setdefault("backoff", 0.05)
    try:
        return webhook.post(url, PAYLOAD, log=log.append, **kw)  # type: ignore[arg-type]
    finally:
        for line in log:  # nothing ever shows the secret part of the URL
            assert "s3cr3t" not in line


def test_a_post_that_is_taken_at_once() -> None:
    with HookServer([200]) as hook:
        posted = _post(hook.url)
    assert (posted.attempts, posted.status) == (1, 200)
    assert hook.received == [PAYLOAD] and hook.paths == ["/services/T000/B000/s3cr3t-token"]


def test_server_errors_are_retried_until_it_takes_the_post() -> None:
    with HookServer([500, 503, 200]) as hook:
        posted = _post(hook.url)
    assert posted.attempts == 3 and len(hook.received) == 3


def test_a_slow_hook_times_out_and_the_next_attempt_passes() -> None:
    with HookServer([("slow", 2.0, 200), 200]) as hook:
        posted = _post(hook.url, timeout=0.5)
    assert posted.attempts == 2


def test_a_refusal_is_not_retried_and_says_why_without_the_url() -> None:
    with HookServer([403, 200]) as hook, pytest.raises(webhook.PostFailed) as failed:
        _post(hook.url)
    assert len(hook.received) == 1
    assert "403" in failed.value.what and "127.0.0.1" in failed.value.what
    assert "s3cr3t" not in failed.value.what + failed.value.todo


def test_persistent_errors_end_after_the_bounded_attempts() -> None:
    with HookServer([500]) as hook, pytest.raises(webhook.PostFailed) as failed:
        _post(hook.url, attempts=3)
    assert len(hook.received) == 3 and "after 3 attempts" in failed.value.what and "500" in failed.value.what


def test_a_hook_nobody_listens_on_and_a_dropped_answer() -> None:
    with pytest.raises(webhook.PostFailed) as failed:
        _post(f"http://127.0.0.1:{free_port()}/s3cr3t", attempts=2)
    assert "could not reach" in failed.value.what and "s3cr3t" not in failed.value.what
    with HookServer(["drop", 200]) as hook:
        assert _post(hook.url).attempts == 2


def test_backoff_doubles_and_honours_its_ceiling() -> None:
    slept: list[float] = []
    with HookServer([500]) as hook, pytest.raises(webhook.PostFailed):
        webhook.post(hook.url, PAYLOAD, attempts=4, backoff=1.0, sleep=slept.append)
    assert slept == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("url", ["", "ftp://x/y", "hooks.slack.com/services/x", "http:///nohost"])
def test_urls_that_are_not_http_are_refused(url: str) -> None:
    with pytest.raises(webhook.PostFailed, match="not an http"):
        webhook.check_url(url)
