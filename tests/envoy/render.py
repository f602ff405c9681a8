"""Render the runnable Envoy config from the `envoy.yaml` template.

Owns: the one step between the shipped template and a config Envoy can run. Envoy cannot
include a file into the wasm filter's `configuration` StringValue and the filter cannot
read files, so this script puts the policy text in, verbatim (into every scimguard filter:
the SCIM listener's and the operator listener's). It also makes the wasm and log paths
absolute, puts an HS256 JWKS into the demo jwt_authn provider (a fresh random key unless
--jwt-key gives one: a shipped fixed key would let anyone mint accepted tokens) and, for
tests, moves ports:

    python tests/envoy/render.py --out .run/envoy.yaml                      # make run
    python tests/envoy/render.py --out X.yaml --listen-port 0 --admin-port 0 \
        --upstream-port 41234 --policy bad.json --log-dir /tmp/t             # e2e tests
        [--ops-port N --collector-port N --webhook-port N --jwt-key BASE64URL]
        [--fleet-port N [--fleet-allow]]   # + deploy/fleet/envoy-fleet.yaml (docs/fleet.md)

Why structural (PyYAML) and not text substitution: every edit finds its target by name
(listener `scim_ingress`, cluster names, filter `envoy.filters.http.wasm`, access-log file
name) and fails loudly if the template changes shape, instead of silently rendering a
config that still points at the defaults.

Why the policy goes in verbatim (not json.load + dump): the filter must judge the bytes
the operator wrote; re-serialising would hide duplicate keys and other errors that the
filter is meant to reject.

Does not: validate the policy or the config (the filter and `envoy --mode validate` do).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WASM_FILTER = "envoy.filters.http.wasm"
HCM = "envoy.filters.network.http_connection_manager"
JWT_AUTHN = "envoy.filters.http.jwt_authn"
# Listener name → the port key that moves it.
LISTENERS = {"scim_ingress": "listen", "scimguard_ops": "ops"}
# Cluster name → the port key that moves it.
CLUSTERS = {"scim_upstream": "upstream", "scim_lookup": "upstream", "app_upstream": "app",
            "audit_collector": "collector", "webhook_receiver": "webhook", "rate_limit_service": "fleet"}
FLEET = ROOT / "deploy" / "fleet" / "envoy-fleet.yaml"


def render(
    template: dict[str, Any],
    *,
    policy_text: str,
    wasm: Path,
    log_dir: Path,
    ports: dict[str, int | None],
    jwt_key: str | None = None,
    vm_env: dict[str, str] | None = None,
    fleet: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a copy of `template` with policy, paths, the demo JWKS and ports filled in (and the
    fleet pieces of deploy/fleet/envoy-fleet.yaml, when `fleet` is that file's content)."""
    config = yaml.safe_load(yaml.safe_dump(template))  # deep copy
    if fleet is not None:
        add_fleet(config, yaml.safe_load(yaml.safe_dump(fleet)))
    for listener in config["static_resources"]["listeners"]:
        hcm = find(listener["filter_chains"][0]["filters"], HCM)["typed_config"]
        for http_filter in hcm["http_filters"]:
            if http_filter["name"] == WASM_FILTER:
                wasm_config = http_filter["typed_config"]["config"]
                wasm_config["configuration"]["value"] = policy_text
                wasm_config["vm_config"]["code"]["local"]["filename"] = str(wasm.resolve())
                if vm_env:  # e.g. the webhook key for notify.secret_env, kept out of the plugin config
                    env = wasm_config["vm_config"].setdefault("environment_variables", {})
                    env.setdefault("key_values", {}).update(vm_env)
            elif http_filter["name"] == JWT_AUTHN:
                for provider in http_filter["typed_config"]["providers"].values():
                    provider["local_jwks"]["inline_string"] = jwks(jwt_key)
        for log in hcm.get("access_log", []):
            file_config = log["typed_config"]
            file_config["path"] = str((log_dir / Path(file_config["path"]).name).resolve())
        set_port(listener["address"], ports.get(LISTENERS.get(listener["name"], "")))
    find(config["static_resources"]["listeners"], "scim_ingress")  # the shape is part of the contract
    set_port(config["admin"]["address"], ports.get("admin"))
    for cluster, key in CLUSTERS.items():
        if cluster == "rate_limit_service" and fleet is None:
            continue
        endpoint = find(config["static_resources"]["clusters"], cluster)["load_assignment"]["endpoints"][0]
        set_port(endpoint["lb_endpoints"][0]["endpoint"]["address"], ports.get(key))
    return config


def add_fleet(config: dict[str, Any], fleet: dict[str, Any]) -> None:
    """Envoy's ratelimit filter after scimguard on the SCIM listener, the marker's descriptor and
    its removal on the SCIM route, and the rate-limit service's cluster."""
    listener = find(config["static_resources"]["listeners"], "scim_ingress")
    hcm = find(listener["filter_chains"][0]["filters"], HCM)["typed_config"]
    filters = hcm["http_filters"]
    at = filters.index(find(filters, WASM_FILTER)) + 1
    filters.insert(at, fleet["http_filter"])
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    scim = next((r for r in routes if r["match"].get("prefix") == "/scim/v2/"), None)
    if scim is None:
        raise SystemExit("render: the /scim/v2/ route not found in the template; has envoy.yaml changed shape?")
    scim["route"]["rate_limits"] = fleet["rate_limits"]
    scim["request_headers_to_remove"] = fleet["request_headers_to_remove"]
    config["static_resources"]["clusters"].append(fleet["cluster"])


def jwks(key: str | None) -> str:
    """A one-key HS256 JWKS (`kty: oct`); `key` is base64url, a fresh random one when absent."""
    key = key or secrets.token_urlsafe(32).rstrip("=")
    return json.dumps({"keys": [{"kty": "oct", "alg": "HS256", "kid": "demo", "k": key}]})


def find(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The item called `name`; the template's shape is part of this script's contract."""
    for item in items:
        if item.get("name") == name:
            return item
    raise SystemExit(f"render: `{name}` not found in the template; has envoy.yaml changed shape?")


def set_port(address: dict[str, Any], port: int | None) -> None:
    if port is not None:
        address["socket_address"]["port_value"] = port


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    template = yaml.safe_load(args.template.read_text(encoding="utf-8"))
    log_dir = args.log_dir or args.out.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet = None
    if args.fleet_port is not None:
        fleet = yaml.safe_load(FLEET.read_text(encoding="utf-8"))
        fleet["http_filter"]["typed_config"]["failure_mode_deny"] = not args.fleet_allow
    config = render(
        template,
        policy_text=args.policy.read_text(encoding="utf-8"),
        wasm=args.wasm,
        log_dir=log_dir,
        ports={key: getattr(args, f"{key}_port") for key in PORTS},
        jwt_key=args.jwt_key,
        vm_env=dict(kv.split("=", 1) for kv in args.vm_env),
        fleet=fleet,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Rendered from {args.template} with policy {args.policy} by tests/envoy/render.py. Do not edit.\n"
    args.out.write_text(header + yaml.safe_dump(config, sort_keys=False, width=1 << 20), encoding="utf-8")
    return 0


PORTS = ("listen", "admin", "upstream", "app", "ops", "collector", "webhook", "fleet")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--template", type=Path, default=ROOT / "envoy.yaml")
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "default.json")
    parser.add_argument("--wasm", type=Path, default=ROOT / "target/wasm32-wasip1/release/scimguard.wasm")
    parser.add_argument("--out", type=Path, default=ROOT / ".run" / "envoy.yaml")
    parser.add_argument("--log-dir", type=Path, help="where audit.log and access.log go (default: --out's folder)")
    for name in PORTS:
        parser.add_argument(f"--{name}-port", type=int)
    parser.add_argument("--vm-env", action="append", default=[], metavar="KEY=VALUE",
                        help="an environment variable of the scimguard Wasm VMs (vm_config.environment_variables)")
    parser.add_argument("--fleet-allow", action="store_true",
                        help="with --fleet-port: failure_mode_deny false (marked writes pass when the service fails)")
    parser.add_argument("--jwt-key", help="base64url HS256 key of the demo jwt_authn provider (default: random)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
