"""A fault-injecting HTTP proxy between the real BigQuery client and the emulator (loopback only).

The emulator never fails; production does. Rules say which requests (method, path, a piece of the body)
get which fault, how many times: an HTTP status with BigQuery's error JSON (429 rate limit, 500, 503, the
streaming-buffer refusal of DML), a stall past the client's deadline, or a dropped connection after the
request reached the emulator (the job was accepted, the answer never arrived). Everything else passes
through unchanged.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

STREAMING_BUFFER = (
    "UPDATE or DELETE statement over table {table} would affect rows in the streaming buffer, which is not supported"
)
_REASONS = {429: "rateLimitExceeded", 500: "backendError", 503: "backendError", 400: "invalidQuery"}
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}


@dataclass
class Rule:
    action: str  # "status", "stall" or "drop"
    method: str = "POST"
    path: str = r"/jobs"
    body: str = ""  # a piece of the request body that must be present (case-insensitive)
    times: int = 1  # how many matching requests get the fault (-1: all)
    status: int = 503
    message: str = "The service is currently unavailable."
    stall: float = 30.0
    hits: int = 0

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.times >= 0 and self.hits >= self.times:
            return False
        return (method == self.method and re.search(self.path, path) is not None
                and (not self.body or self.body.lower().encode() in body.lower()))  # fmt: skip


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, what happened)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, method: str, path: str, body: bytes) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, body):
                    rule.hits += 1
                    return rule
        return None

    def add(self, *rules: Rule) -> None:
        with self._lock:
            self.rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.seen.clear()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    up = urlparse(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            rule = proxy.fault(self.command, self.path, body)
            if rule is not None and rule.action == "status":
                proxy.seen.append((self.command, self.path, f"status {rule.status}"))
                payload = json.dumps({"error": {"code": rule.status, "message": rule.message, "status": "ERROR",
                                                "errors": [{"reason": _REASONS.get(rule.status, "backendError"),
                                                            "message": rule.message}]}}).encode()  # fmt: skip
                self.send_response(rule.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if rule is not None and rule.action == "stall":
                proxy.seen.append((self.command, self.path, "stalled"))
                time.sleep(rule.stall)
                self.close_connection = True
                return
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=600)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP and k.lower() != "host"}
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            conn.close()
            if rule is not None and rule.action == "drop":  # the emulator did the work; the answer is lost
                proxy.seen.append((self.command, self.path, "dropped"))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            proxy.seen.append((self.command, self.path, f"passed {answer.status}"))
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

    return Handler


@contextmanager
def running(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
