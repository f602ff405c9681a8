"""WSGI middleware that records every request the SCIM upstream receives.

Owns: one JSON line per request, appended to a file, so e2e tests can assert what
the upstream did (or did not) receive behind Envoy + scimguard. It records the
request as it arrived (method, path, query, headers, exact body bytes) plus the
status the application answered. Credentials (`authorization`, `cookie`) are not
recorded; everything else is, so `x-scim-*` and `x-forwarded-*` are visible.

Does not: change the request or the response in any way. The body is read once
and handed on to the application unchanged.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

# Why not recorded: they may hold secrets, and no test needs them.
UNRECORDED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class RecordingMiddleware:
    """Wraps a WSGI app; appends one JSON object per request to `path`."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: str) -> None:
        self.app = app
        self.path = path
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = recorded_headers(environ)
        body = read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        record: dict[str, Any] = {
            "time": time.time(),
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "protocol": environ.get("SERVER_PROTOCOL", ""),
            "headers": headers,
            "body": body.decode("utf-8", errors="replace"),
            "body_b64": base64.b64encode(body).decode("ascii"),
        }

        def recording_start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            record["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, *exc)

        result = self.app(environ, recording_start_response)
        # INVARIANT: the line is on disk before the response body leaves, so a
        # client that has its response can read the record.
        self.write(record)
        return result

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self.lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the whole request body (waitress de-chunks and sets CONTENT_LENGTH)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        return stream.read(int(length))
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


def recorded_headers(environ: dict[str, Any]) -> dict[str, str]:
    """Lower-case header names as sent on the wire (`x-scim-risk`), minus credentials."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key.removeprefix("HTTP_").replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.replace("_", "-").lower()
        else:
            continue
        if name not in UNRECORDED_HEADERS and value != "":
            headers[name] = value
    return headers
