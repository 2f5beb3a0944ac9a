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
