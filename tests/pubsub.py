"""The Pub/Sub emulator (Debian's google-cloud-cli-pubsub-emulator, installed by `make pubsub`) for the re-run
tests: started on a free loopback port, with the pipeline's topics and a subscription on each (the pipeline's
side, which the tests play)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.servers import free_port, wait_until_answering

PROJECT = "triage-test"
TOPICS = ("nba-phase3-trigger", "nba-phase4-trigger")


def start(workdir: Path) -> Iterator[str]:
    """Yield ``host:port`` of a running emulator; stop it (and its JVM) after."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise RuntimeError("The Pub/Sub emulator needs the Google Cloud CLI: `make pubsub` installs it.")
    port = free_port()
    data = workdir / "pubsub-data"
    data.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "pubsub.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}", f"--project={PROJECT}",
         f"--data-dir={data}", "--quiet"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_answering(f"http://127.0.0.1:{port}", proc, str(log_path), timeout=120)  # type: ignore[arg-type]
        yield f"127.0.0.1:{port}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # gcloud and the emulator's JVM
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


class Pipeline:
    """The pipeline's side of the topics: one subscription per topic, pulled by the test."""

    def __init__(self, host: str, tag: str) -> None:
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        from google.cloud import pubsub_v1

        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.tag = tag
        self.subscriptions: dict[str, str] = {}
        for topic in TOPICS:
            path = self.publisher.topic_path(PROJECT, topic)
            try:
                self.publisher.create_topic(name=path)
            except Exception as exc:  # AlreadyExists: another test made it
                if type(exc).__name__ != "AlreadyExists":
                    raise
            sub = self.subscriber.subscription_path(PROJECT, f"{tag}-{topic}")
            self.subscriber.create_subscription(name=sub, topic=path)
            self.subscriptions[topic] = sub

    def pull(self, topic: str, *, expect: int, timeout: float = 60, settle: float = 1.0) -> list[Any]:
        """Every message on the topic, acknowledged: at least ``expect`` of them (waiting up to ``timeout`` for
        them) and any that come within ``settle`` seconds after; with ``expect=0``, any that come within
        ``timeout``. Each pull answers at once (a waiting pull held an empty topic for nine seconds, whatever
        the deadline asked: 60 s of the command-line test's 62 were spent so); the senders under test publish
        before they return."""
        got: list[Any] = []
        deadline, enough_at = time.monotonic() + timeout, None
        while True:
            with warnings.catch_warnings():  # return_immediately is deprecated for a server, not for a test
                warnings.simplefilter("ignore", DeprecationWarning)
                answer = self.subscriber.pull(subscription=self.subscriptions[topic], max_messages=100,
                                              return_immediately=True, timeout=10)  # fmt: skip
            if answer.received_messages:
                self.subscriber.acknowledge(subscription=self.subscriptions[topic],
                                            ack_ids=[m.ack_id for m in answer.received_messages])  # fmt: skip
                got += [m.message for m in answer.received_messages]
            now = time.monotonic()
            if now >= deadline:
                break
            if answer.received_messages:
                continue  # more may be waiting: pulled at once
            if expect and len(got) >= expect:
                enough_at = enough_at or now
                if now >= enough_at + settle:
                    break
            time.sleep(0.1)
        return got
