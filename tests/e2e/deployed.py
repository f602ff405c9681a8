"""Envoy in the shapes a mesh delivers scimguard in: module by `code.remote`, filter config by
file-based ECDS (as Istio's agent and Envoy Gateway hand it over), with or without the flag.

Owns: turning the rendered envoy.yaml (tests/envoy/render.py) into those shapes with the
functions deploy/render.py builds the shipped manifests with (so a proof here is about what
ships), a module server on 127.0.0.1 that can start late or go away, atomic ECDS file updates,
and a raw TCP upstream that records the bytes it receives (what the application sees, even of
a request that is reset before it completes).

Does not: judge anything; the tests assert.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from harness import ROOT, Gateway, Process, envoy_binary, free_port, render_config, spawn, start_envoy, start_upstream

sys.path.insert(0, str(ROOT / "deploy"))
import render as deploy_render  # noqa: E402  (deploy/render.py: the manifests' generator)

WASM_FILTER = "envoy.filters.http.wasm"
MODULE_CLUSTER = "wasm_modules"
TYPED_EXTENSION_CONFIG = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- a module server --------------------------------------------------------------------------


class ModuleServer:
    """Serves `files` ({url path: bytes}) on 127.0.0.1:`port` from `start()`; counts GETs."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.port, self.gets = files, free_port(), 0
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> ModuleServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                owner.gets += 1
                body = owner.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("content-length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


# --- a raw recording upstream ----------------------------------------------------------------


class WireUpstream:
    """A TCP server that records every byte each connection sends and never answers until the
    request is complete (Content-Length), then answers 200. Shows what reached the application."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections: list[bytearray] = []
        self.sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            received = bytearray()
            self.connections.append(received)
            threading.Thread(target=self._serve, args=(conn, received), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket, received: bytearray) -> None:
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                received.extend(chunk)
                head, sep, body = bytes(received).partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                if sep and len(body) >= length:
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                    return

    def stop(self) -> None:
        self.sock.close()


# --- Envoy configs ------------------------------------------------------------------------------


def module_cluster(port: int) -> dict[str, Any]:
    return {"name": MODULE_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": MODULE_CLUSTER, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def scim_filters(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The SCIM listener's HTTP filter list (edited in place)."""
    listener = deploy_render.named(config["static_resources"]["listeners"], "scim_ingress")
    hcm = deploy_render.named(listener["filter_chains"][0]["filters"], deploy_render.HCM)
    filters: list[dict[str, Any]] = hcm["typed_config"]["http_filters"]
    return filters


def replace_scim_filter(config: dict[str, Any], new: dict[str, Any]) -> None:
    filters = scim_filters(config)
    index = next(i for i, f in enumerate(filters) if f["name"] == WASM_FILTER)
    filters[index] = new


def ecds_file_source(path: Path) -> dict[str, Any]:
    """A path-based config source, reloaded when a file is moved into its directory."""
    return {"path_config_source": {"path": str(path), "watched_directory": {"path": str(path.parent)}},
            "resource_api_version": "V3"}


def write_ecds(path: Path, resource: dict[str, Any], version: str) -> None:
    """Replace the ECDS file atomically: write it in the parent of the watched directory (same
    file system, no event in the watched one), then rename it over the old one."""
    response = {"version_info": version, "resources": [{"@type": TYPED_EXTENSION_CONFIG, **resource}]}
    temporary = path.parent.parent / f".{path.name}.{version}.tmp"
    temporary.write_text(json.dumps(response), encoding="utf-8")
    os.replace(temporary, path)


@dataclass
class Shape:
    """What to change in the rendered envoy.yaml before starting Envoy."""

    edit: Callable[[dict[str, Any]], None]
    extra_clusters: list[dict[str, Any]] = field(default_factory=list)
    # A route to a raw upstream instead of scim2-server (for the no-flag wire proof).
    upstream_port: int | None = None


def start_shaped(workdir: Path, shape: Shape, *, policy: Path | None = None, wait_ready: bool = True) -> Gateway:
    """Upstream (recording scim2-server) + Envoy rendered from envoy.yaml, then reshaped."""
    workdir.mkdir(parents=True, exist_ok=True)
    upstream, upstream_port, recording = start_upstream(workdir)
    port, admin_port = free_port(), free_port()
    ports = {"listen": port, "admin": admin_port, "upstream": shape.upstream_port or upstream_port,
             "app": free_port(), "ops": free_port(), "collector": free_port(), "webhook": free_port()}
    gateway = Gateway(workdir, port, admin_port, upstream_port, recording, [upstream], ports)
    try:
        rendered = render_config(workdir, ports=ports, policy=policy)
        config = yaml.safe_load(rendered.read_text())
        shape.edit(config)
        config["static_resources"]["clusters"].extend(shape.extra_clusters)
        shaped = workdir / "envoy-shaped.yaml"
        shaped.write_text(yaml.safe_dump(config, sort_keys=False, width=1 << 20))
        if wait_ready:
            gateway.processes.append(start_envoy(workdir, shaped, base_id=port, admin_port=admin_port))
        else:
            gateway.processes.append(spawn_envoy(workdir, shaped, base_id=port))
    except BaseException:
        gateway.stop()
        raise
    return gateway


def spawn_envoy(workdir: Path, config: Path, base_id: int) -> Process:
    """Envoy started without waiting for /ready (the test watches it come up)."""
    argv = [envoy_binary(), "-c", str(config), "--base-id", str(base_id), "--concurrency", "2",
            "--log-path", str(workdir / "envoy.log"), "--file-flush-interval-msec", "50"]
    return spawn("envoy", argv, workdir)


def stat(gateway: Gateway, name: str) -> int:
    """One counter from the admin `/stats` (0 when absent)."""
    url = f"http://127.0.0.1:{gateway.admin_port}/stats?filter=^{name}$&format=json"
    with urllib.request.urlopen(url, timeout=5) as response:
        stats = json.load(response).get("stats", [])
    return int(next((s["value"] for s in stats if s.get("name") == name), 0))


# --- Envoy Gateway's shape ------------------------------------------------------------------------


def eg_listener_edit(extension_policy: dict[str, Any], module_url: str, module_sha256: str,
                     listener_name: str, patch_policy: dict[str, Any] | None) -> Callable[[dict[str, Any]], None]:
    """An edit that makes envoy.yaml's SCIM listener look as Envoy Gateway v1.9 builds it from
    `extension_policy` (internal/xds/translator/wasm.go: the wasm filter named
    `envoy.filters.http.wasm/<ir name>`, disabled in the HCM and enabled on the policy's route,
    code served over HTTP by the controller, the policy's `config` as a JSON StringValue, its own
    vm_id), then applies `patch_policy`'s JSON patches to that listener as Envoy Gateway does
    (proto field names, jsonPath → JSON pointers, RFC 6902 add creating missing parents)."""
    entry = extension_policy["spec"]["wasm"][0]
    name = f"envoy.filters.http.wasm/envoyextensionpolicy/{extension_policy['metadata']['namespace']}/" \
           f"{extension_policy['metadata']['name']}/wasm/0"
    wasm = {"name": name, "disabled": True, "typed_config": {
        "@type": deploy_render.WASM_TYPE,
        "config": {
            "name": entry["name"], "root_id": entry["rootID"],
            "configuration": {"@type": deploy_render.STRING_VALUE,
                              "value": json.dumps(entry["config"], separators=(",", ":"))},
            "vm_config": {"vm_id": name.split("/", 1)[1], "runtime": "envoy.wasm.runtime.v8",
                          "code": deploy_render.remote_code(module_url, module_sha256, cluster=MODULE_CLUSTER,
                                                            timeout="10s")},
        }}}

    def edit(config: dict[str, Any]) -> None:
        listener = deploy_render.named(config["static_resources"]["listeners"], "scim_ingress")
        hcm = deploy_render.named(listener["filter_chains"][0]["filters"], deploy_render.HCM)["typed_config"]
        # Envoy Gateway's defaults: no buffer limit of ours, its own access log, no audit mark removal.
        listener.pop("per_connection_buffer_limit_bytes")
        hcm.pop("early_header_mutation_extensions")
        hcm["access_log"] = [log for log in hcm["access_log"] if "wasm.scimguard" not in json.dumps(log)]
        replace_scim_filter(config, wasm)
        for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
            route.pop("typed_per_filter_config", None)
            if route["match"].get("prefix") == "/scim/v2/":
                route["typed_per_filter_config"] = {name: {
                    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": {}}}
        listener["name"] = listener_name
        for patch in (patch_policy or {}).get("spec", {}).get("jsonPatches", []):
            assert patch["name"] == listener_name, f"patch targets `{patch['name']}`, not `{listener_name}`"
            operation = patch["operation"]
            targets = json_path(listener, operation["jsonPath"]) if "jsonPath" in operation else [listener]
            assert targets, f"jsonPath matched nothing: {operation['jsonPath']}"
            for target in targets:
                json_pointer_add(target, operation["path"], operation["value"])
    return edit


def json_path(document: Any, path: str) -> list[Any]:
    """The nodes a JSONPath of the forms the shipped patches use selects: `..key`, `.key`,
    `[?(@.name=='value')]` (a subset of ojg's JSONPath, which Envoy Gateway uses)."""
    import re
    tokens = re.findall(r"\.\.[A-Za-z_]+|\.[A-Za-z_]+|\[\?\(@\.name=='[^']*'\)\]", path)
    assert "".join(tokens) == path, f"unsupported JSONPath: {path}"
    nodes = [document]
    for token in tokens:
        if token.startswith(".."):
            nodes = [found for node in nodes for found in descend(node, token[2:])]
        elif token.startswith("."):
            nodes = [node[token[1:]] for node in nodes if isinstance(node, dict) and token[1:] in node]
        else:
            wanted = token[len("[?(@.name=='"):-len("')]")]
            nodes = [item for node in nodes if isinstance(node, list) for item in node
                     if isinstance(item, dict) and item.get("name") == wanted]
    return nodes


def descend(node: Any, key: str) -> list[Any]:
    found = []
    if isinstance(node, dict):
        if key in node:
            found.append(node[key])
        children = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return []
    for child in children:
        found.extend(descend(child, key))
    return found


def json_pointer_add(target: dict[str, Any], pointer: str, value: Any) -> None:
    """RFC 6902 `add` at `pointer` below `target`, creating missing parents (EnsurePathExistsOnAdd)."""
    parts = pointer.lstrip("/").split("/")
    node: Any = target
    for index, part in enumerate(parts[:-1]):
        node = node.setdefault(part, [] if parts[index + 1] == "-" else {})
    last = parts[-1]
    if last == "-":
        node.append(value)
    else:
        node[last] = value
