"""In-process HTTP servers for the audit-trail e2e tests: a recording audit collector, a webhook
receiver, and a tiny application upstream. Stdlib only (ThreadingHTTPServer).

Owns: recording what Envoy sent them, and failure switches: `fail()` answers 503, `down()` stops
listening (connection refused) until `up()`. Does not: verify signatures or judge payloads; the
tests do that, with their own independent code.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what we answered

    def lines(self) -> list[dict[str, Any]]:
        """The NDJSON body, one object per line."""
        return [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]

    def json(self) -> Any:
        return json.loads(self.body)


class Sink:
    """Records every POST; answers 200 (`ok`), 503 (`fail`), or does not listen (`down`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.failing = False
        self.server: ThreadingHTTPServer | None = None
        self.up()

    def up(self) -> None:
        if self.server is not None:
            return
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = 503 if sink.failing else 200
                headers = {k.lower(): v for k, v in self.headers.items()}
                with sink.lock:
                    sink.received.append(Received(self.path, headers, body, status))
                reply = b'{"ok":true}' if status == 200 else b'{"error":"collector unavailable"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name=f"sink-{self.name}", daemon=True).start()

    def down(self) -> None:
        """Stop listening: Envoy's calls get connection refused."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def fail(self, failing: bool = True) -> None:
        self.failing = failing

    def accepted(self) -> list[Received]:
        """The requests answered 200."""
        with self.lock:
            return [r for r in self.received if r.status == 200]

    def attempts(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def lines(self) -> list[dict[str, Any]]:
        """Every line of every accepted batch, in arrival order."""
        return [line for r in self.accepted() for line in r.lines()]

    def stop(self) -> None:
        self.down()


class AppUpstream:
    """The application behind `/api/`: GET 200, other methods 201; `/api/forbidden` answers 403."""

    def __init__(self) -> None:
        self.port = free_port()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                forbidden = self.path.startswith("/api/forbidden")
                status = 403 if forbidden else 200 if self.command in ("GET", "HEAD") else 201
                body = json.dumps({"path": self.path}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="app-upstream", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
