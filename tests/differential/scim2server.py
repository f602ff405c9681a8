"""scim2-server 0.8.3 as a differential implementation: its WSGI app called in-process.

Owns: building the app the way `tests/upstream/scim_upstream.py` does (default schemas and resource
types, `ScimService`), over an `InMemoryStorage` whose new ids are predictable while seeding, so the
seeded resources carry the generator's ids; resetting the storage to the seed before every write;
reading the state back from the storage itself (so `password`, which is never returned, is seen).
Does not: listen on a socket, or keep anything between writes.
"""

from __future__ import annotations

import copy
import io
import json
import secrets
from typing import Any

from scim2_models import ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.utils import load_default_resource_types, load_default_schemas, load_default_service_provider_config

BASE = "/scim/v2"


class SeededStorage(InMemoryStorage):
    """An InMemoryStorage that hands out `next_ids` first (seeding), then `new-<n>`."""

    def __init__(self) -> None:
        super().__init__()
        self.next_ids: list[str] = []
        self.counter = 0

    def generate_id(self, resource_type: Any, resource: Any) -> str:
        if self.next_ids:
            return self.next_ids.pop(0)
        self.counter += 1
        return f"new-{self.counter}"


class Scim2Server:
    name = "scim2-server"

    def __init__(self) -> None:
        config = load_default_service_provider_config()
        provider = ScimProvider.from_discovery(
            load_default_schemas().values(), load_default_resource_types().values(), config=config
        )
        self.storage = SeededStorage()
        self.app = BearerTokenApplication(
            self.storage, provider, service=ScimService(provider, secret=secrets.token_urlsafe(16)), bearer_tokens=[]
        )
        self.seeded: list[Any] | None = None

    def seed(self, state: dict[str, dict[str, Any]]) -> None:
        """Creates the seed resources through the API, with their ids; remembers the result."""
        self.storage.resources = []
        for rtype in ("Users", "Groups"):
            for rid, resource in state[rtype].items():
                self.storage.next_ids = [rid]
                body = {k: v for k, v in resource.items() if k != "id"}
                status, reply = self.call("POST", f"{BASE}/{rtype}", json.dumps(body).encode())
                if status != 201:
                    raise RuntimeError(f"scim2-server refused the seed {rtype}/{rid}: {status} {reply[:300]!r}")
        self.seeded = copy.deepcopy(self.storage.resources)

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Resets to the seed, sends the write, returns status, state after and (Bulk) the response."""
        self.storage.resources = copy.deepcopy(self.seeded)
        self.storage.counter = 0
        raw = request.get("raw_body")
        body = raw.encode() if raw is not None else (
            json.dumps(request["body"]).encode() if request.get("body") is not None else b"")
        status, reply = self.call(request["method"], request["path"], body, request.get("headers") or {})
        out: dict[str, Any] = {"status": status, "state": self.state()}
        if status >= 400:
            out["error"] = reply[:500].decode(errors="replace")
        if request["path"].rstrip("/").endswith("/Bulk"):
            try:
                out["response"] = json.loads(reply)
            except ValueError:
                out["response"] = None
        return out

    def state(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {"Users": {}, "Groups": {}}
        for r in self.storage.resources:
            data = r.model_dump(mode="json", by_alias=True, exclude_none=True)
            rtype = "Users" if r.meta.resource_type == "User" else "Groups"
            out[rtype][r.id] = data
        return out

    def call(self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path.removeprefix("/scim"), "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "wsgi.url_scheme": "http", "SCRIPT_NAME": "",
            "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": "application/scim+json", "wsgi.errors": io.StringIO(),
        }
        for k, v in (headers or {}).items():
            if k.lower() == "content-type":
                environ["CONTENT_TYPE"] = v
            else:
                environ["HTTP_" + k.upper().replace("-", "_")] = v
        status_box: list[str] = []
        chunks = self.app(environ, lambda s, h, exc=None: status_box.append(s))
        reply = b"".join(chunks)
        return int(status_box[0].split()[0]), reply
