"""Starting a test server on loopback: a free port, and waiting until it answers."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from typing import IO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_answering(url: str, proc: subprocess.Popen[bytes], log_name: str, *, timeout: float = 60) -> None:
    """Poll ``url`` until it answers 200; kill the server and say where its log is if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"The server behind {url} did not start; see {log_name}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes], log: IO[str]) -> None:
    """Stop a test server (killed if it does not stop within 10 s) and close its log."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


class HookServer:
    """A local stand-in for a Slack incoming webhook: answers each POST as scripted, records what it got.

    ``script`` is consumed one entry per request (the last one repeats): ``200`` (or any status) answers at
    once; ``("slow", seconds, status)`` answers after ``seconds``; ``"drop"`` closes the connection unanswered.
    """

    def __init__(self, script: list[object]) -> None:
        import http.server
        import json
        import threading

        self.script = list(script)
        self.received: list[dict[str, object]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.paths.append(self.path)
                outer.received.append(json.loads(body or b"{}"))
                step = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                status = step
                if isinstance(step, tuple) and step[0] == "slow":
                    time.sleep(float(step[1]))
                    status = step[2]
                if step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(int(str(status)))
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if int(str(status)) == 200 else b"no")

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/s3cr3t-token"

    def __enter__(self) -> HookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
