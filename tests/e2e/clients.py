"""HTTP clients for the e2e suite: HTTP/1.1 and h2c (prior knowledge) through httpx, and a
raw `h2` client for what httpx cannot send (request trailers).

Owns: protocol selection and the SCIM content type. Does not: know scimguard's contract.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import httpx

SCIM_JSON = "application/scim+json"
PROTOCOLS = ("http/1.1", "h2c")


def client(base_url: str, protocol: str) -> httpx.Client:
    """An httpx client speaking exactly `protocol` (h2c = HTTP/2 with prior knowledge)."""
    h2c = protocol == "h2c"
    return httpx.Client(
        base_url=base_url,
        http1=not h2c,
        http2=h2c,
        timeout=30,
        headers={"content-type": SCIM_JSON, "accept": SCIM_JSON},
    )


def expected_http_version(protocol: str) -> str:
    return "HTTP/2" if protocol == "h2c" else "HTTP/1.1"


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def h2_request_with_trailers(
    url: str,
    method: str,
    body: bytes,
    trailers: list[tuple[str, str]],
    headers: list[tuple[str, str]] | None = None,
    chunk: int = 16384,
) -> RawResponse:
    """One h2c request: HEADERS, DATA (never END_STREAM), then trailers with END_STREAM.

    This is the shape where a filter that decides only on `end_of_stream` in the body
    callback never decides (proxy-wasm delivers the end in on_http_request_trailers).
    """
    parts = urlsplit(url)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        request_headers = [
            (":method", method), (":scheme", "http"), (":authority", parts.netloc),
            (":path", parts.path + (f"?{parts.query}" if parts.query else "")),
            ("content-type", SCIM_JSON), *(headers or []),
        ]
        conn.send_headers(stream, request_headers, end_stream=False)
        sock.sendall(conn.data_to_send())
        for offset in range(0, len(body), chunk):
            send_data(sock, conn, stream, body[offset:offset + chunk])
        conn.send_headers(stream, trailers, end_stream=True)
        sock.sendall(conn.data_to_send())
        return read_response(sock, conn, stream)


def send_data(sock: socket.socket, conn: h2.connection.H2Connection, stream: int, data: bytes) -> None:
    """Send DATA within flow-control windows, reading WINDOW_UPDATEs as needed."""
    while data:
        window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
        if window <= 0:
            for event in conn.receive_data(sock.recv(65535)):
                if isinstance(event, h2.events.StreamReset):
                    raise ConnectionError(f"stream reset while sending: {event.error_code}")
            sock.sendall(conn.data_to_send())
            continue
        conn.send_data(stream, data[:window], end_stream=False)
        sock.sendall(conn.data_to_send())
        data = data[window:]


def read_response(sock: socket.socket, conn: h2.connection.H2Connection, stream: int) -> RawResponse:
    status, headers, body = 0, {}, bytearray()
    while True:
        data = sock.recv(65535)
        if not data:
            raise ConnectionError("connection closed before the response ended")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                headers = {str(k): str(v) for k, v in event.headers}
                status = int(headers[":status"])
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, stream)
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                raise ConnectionError(f"stream reset by Envoy: error code {event.error_code}")
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                sock.sendall(conn.data_to_send())
                return RawResponse(status, headers, bytes(body))
        sock.sendall(conn.data_to_send())
