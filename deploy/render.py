"""Render every deploy/ manifest from one policy file, deploy/values.json and envoy.yaml.

Owns: the single place the Istio and Envoy Gateway manifests come from, so they cannot drift
from each other or from the tested `envoy.yaml`:

    python3 deploy/render.py                    # rewrite deploy/istio/*, deploy/envoy-gateway/*
    python3 deploy/render.py --check            # exit 1 if a shipped file differs (tests do this)
    python3 deploy/render.py --digest sha256:…  # after pushing a new image (make deploy-render)

What each manifest takes from where:
  * the policy: the text of --policy, verbatim (a StringValue: the filter judges, and its audit
    records' `policy.sha256` names, the bytes the operator wrote); in a WasmPlugin and an
    EnvoyExtensionPolicy it becomes a YAML object, re-serialised to JSON by the control plane;
  * the image: `values.json` `image` (`registry/repo:tag`) and `manifest_digest`, the digest of
    the image MANIFEST (what `make oci` prints), which an `oci://` URL's `sha256` must be;
  * the filter settings (failure policy, `allow_on_headers_stop_iteration`, vm id, root id), the
    audit access log, the audit-mark removal and the buffer limit: from envoy.yaml's `scim_ingress`
    listener, the config every e2e test runs.

Importable: the e2e tests build their ECDS resources and code sources with the same functions
(`wasm_filter`, `ecds_resource`, `remote_code`), so what they prove is what ships.

Does not: apply anything, or talk to a cluster.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
HCM = "envoy.filters.network.http_connection_manager"
FILTER_NAME = "scimguard"
# Where a sidecar's audit lines go: the container's stdout, collected with the pod's logs.
AUDIT_LOG_PATH = "/dev/stdout"
HEADER = "# Rendered by deploy/render.py from {policy} and deploy/values.json. Do not edit; re-render.\n"


# --- what envoy.yaml says ----------------------------------------------------------------------


# The offload switch that goes with the audit log the manifests ship (src/engine/offload.rs).
LOG_FIELDS = "SCIMGUARD_AUDIT_LOG_FIELDS"


def envoy_parts(template: Path = ROOT / "envoy.yaml") -> dict[str, Any]:
    """The pieces of envoy.yaml's `scim_ingress` listener the manifests reuse."""
    config = yaml.safe_load(template.read_text(encoding="utf-8"))
    listener = named(config["static_resources"]["listeners"], "scim_ingress")
    hcm = named(listener["filter_chains"][0]["filters"], HCM)["typed_config"]
    wasm = named(hcm["http_filters"], "envoy.filters.http.wasm")["typed_config"]["config"]
    audit_log = next(log for log in hcm["access_log"] if "wasm.scimguard" in json.dumps(log["typed_config"]))
    audit_log = copy.deepcopy(audit_log)
    audit_log["typed_config"]["path"] = AUDIT_LOG_PATH
    return {
        "buffer_limit": listener["per_connection_buffer_limit_bytes"],
        "early_header_mutation": hcm["early_header_mutation_extensions"],
        "audit_log": audit_log,
        "plugin": {key: wasm[key] for key in ("name", "root_id", "failure_policy", "allow_on_headers_stop_iteration")},
        "vm": {key: wasm["vm_config"][key] for key in ("vm_id", "runtime")},
        # The audit log above writes each record's client address and status
        # (SCIMGUARD_AUDIT_LOG_FIELDS, src/engine/offload.rs): the filter must know. The response
        # tags stay with the filter: the manifests do not patch the application's routes.
        "vm_env": {LOG_FIELDS: wasm["vm_config"]["environment_variables"]["key_values"][LOG_FIELDS]},
    }


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for item in items:
        if item.get("name") == name:
            return item
    raise SystemExit(f"render: `{name}` not found in envoy.yaml; has it changed shape?")


# --- the filter config (Envoy's own types) -----------------------------------------------------


def wasm_filter(policy_text: str, code: dict[str, Any], *, flag: bool = True,
                parts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `envoy.extensions.filters.http.wasm.v3.Wasm` typed_config, as envoy.yaml has it.

    `flag=False` gives what a WasmPlugin yields (no `allow_on_headers_stop_iteration`)."""
    parts = parts or envoy_parts()
    plugin = dict(parts["plugin"])
    if not flag:
        del plugin["allow_on_headers_stop_iteration"]
    return {
        "@type": WASM_TYPE,
        "config": {
            **plugin,
            "configuration": {"@type": STRING_VALUE, "value": policy_text},
            "vm_config": {**parts["vm"], "environment_variables": {"key_values": parts["vm_env"]},
                          "code": code},
        },
    }


def remote_code(uri: str, sha256_hex: str, *, cluster: str = "_", timeout: str = "30s",
                retries: int | None = None) -> dict[str, Any]:
    """A `code.remote` source. For an `oci://` URI, `sha256` is the image MANIFEST digest; for
    an http(s) URI it is the module's. Istio's agent fetches `oci://` itself and rewrites this to
    a local file (cluster `_` is never used, as in istiod's own WasmPlugin output)."""
    remote: dict[str, Any] = {"http_uri": {"uri": uri, "cluster": cluster, "timeout": timeout},
                              "sha256": sha256_hex}
    if retries is not None:
        remote["retry_policy"] = {"num_retries": retries,
                                  "retry_back_off": {"base_interval": "0.2s", "max_interval": "1s"}}
    return {"remote": remote}


def ecds_resource(typed_config: dict[str, Any], name: str = FILTER_NAME) -> dict[str, Any]:
    """An ECDS `TypedExtensionConfig`: the named filter config a `config_discovery` loads."""
    return {"name": name, "typed_config": typed_config}


def ecds_filter(config_source: dict[str, Any], name: str = FILTER_NAME) -> dict[str, Any]:
    """An HTTP filter that loads its config by ECDS. No default_config: until a valid config
    arrives, Envoy refuses the filter chain's requests (fail closed), it never skips the filter."""
    return {"name": name, "config_discovery": {"config_source": config_source, "type_urls": [WASM_TYPE]}}


# --- the manifests -----------------------------------------------------------------------------


def oci_url(values: dict[str, Any]) -> str:
    return "oci://" + values["image"]


def digest_hex(values: dict[str, Any]) -> str:
    return str(values["manifest_digest"]).removeprefix("sha256:")


def istio_envoyfilter(policy_text: str, values: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    code = remote_code(oci_url(values), digest_hex(values))
    inbound_hcm = {"context": "SIDECAR_INBOUND",
                   "listener": {"filterChain": {"filter": {"name": HCM}}}}
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": FILTER_NAME, "namespace": values["namespace"]},
        "spec": {
            "workloadSelector": {"labels": values["workload_labels"]},
            "priority": 10,
            "configPatches": [
                {"applyTo": "EXTENSION_CONFIG",
                 "patch": {"operation": "ADD", "value": ecds_resource(wasm_filter(policy_text, code, parts=parts))}},
                {"applyTo": "HTTP_FILTER",
                 "match": {"context": "SIDECAR_INBOUND",
                           "listener": {"filterChain": {"filter": {"name": HCM,
                                                                   "subFilter": {"name": "envoy.filters.http.router"}}}}},
                 "patch": {"operation": "INSERT_BEFORE", "value": ecds_filter({"ads": {}})}},
                {"applyTo": "NETWORK_FILTER", "match": inbound_hcm,
                 "patch": {"operation": "MERGE", "value": {"name": HCM, "typed_config": {
                     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                     "early_header_mutation_extensions": parts["early_header_mutation"],
                     "access_log": [parts["audit_log"]]}}}},
                {"applyTo": "LISTENER", "match": {"context": "SIDECAR_INBOUND"},
                 "patch": {"operation": "MERGE", "value": {"per_connection_buffer_limit_bytes": parts["buffer_limit"]}}},
                {"applyTo": "CLUSTER", "match": {"context": "SIDECAR_INBOUND"},
                 "patch": {"operation": "MERGE", "value": {"per_connection_buffer_limit_bytes": parts["buffer_limit"]}}},
            ],
        },
    }


def istio_wasmplugin(policy: dict[str, Any], values: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": FILTER_NAME, "namespace": values["namespace"]},
        "spec": {
            "selector": {"matchLabels": values["workload_labels"]},
            "url": oci_url(values),
            "sha256": digest_hex(values),
            "imagePullPolicy": "IfNotPresent",
            "pluginName": parts["plugin"]["root_id"],
            "phase": "AUTHZ",
            "failStrategy": "FAIL_RELOAD",
            "type": "HTTP",
            "pluginConfig": policy,
        },
    }


def eg_extension_policy(policy: dict[str, Any], values: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyExtensionPolicy",
        "metadata": {"name": FILTER_NAME, "namespace": values["namespace"]},
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": values["httproute"]}],
            "wasm": [{
                "name": FILTER_NAME,
                "rootID": parts["plugin"]["root_id"],
                "code": {"type": "Image", "image": {"url": values["image"], "sha256": digest_hex(values)}},
                "config": policy,
                "failOpen": False,
            }],
        },
    }


def eg_filter_name(values: dict[str, Any]) -> str:
    """The HCM filter Envoy Gateway v1.9 generates for wasm entry 0 of our policy
    (`envoy.filters.http.wasm/` + `envoyextensionpolicy/<ns>/<name>/wasm/<index>`)."""
    return f"envoy.filters.http.wasm/envoyextensionpolicy/{values['namespace']}/{FILTER_NAME}/wasm/0"


def eg_patch_policy(values: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    gateway = values["gateway"]
    listener = f"{gateway['namespace']}/{gateway['name']}/{gateway['listener']}"
    hcm_path = f"..filters[?(@.name=='{HCM}')].typed_config"
    wasm_path = f"{hcm_path}.http_filters[?(@.name=='{eg_filter_name(values)}')].typed_config.config"

    def patch(json_path: str | None, path: str, value: Any) -> dict[str, Any]:
        operation: dict[str, Any] = {"op": "add", "path": path, "value": value}
        if json_path:
            operation = {"op": "add", "jsonPath": json_path, "path": path, "value": value}
        return {"type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": listener,
                "operation": operation}

    return {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyPatchPolicy",
        "metadata": {"name": f"{FILTER_NAME}-stop-iteration", "namespace": gateway["namespace"]},
        "spec": {
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["name"]},
            "type": "JSONPatch",
            "jsonPatches": [
                patch(wasm_path, "/allow_on_headers_stop_iteration", True),
                patch(wasm_path, "/failure_policy", parts["plugin"]["failure_policy"]),
                patch(wasm_path, "/vm_config/environment_variables", {"key_values": parts["vm_env"]}),
                patch(None, "/per_connection_buffer_limit_bytes", parts["buffer_limit"]),
                patch(hcm_path, "/access_log/-", parts["audit_log"]),
                patch(hcm_path, "/early_header_mutation_extensions", parts["early_header_mutation"]),
            ],
        },
    }


def render_all(policy_path: Path, values: dict[str, Any]) -> dict[Path, str]:
    """{shipped path: text} for every manifest."""
    policy_text = policy_path.read_text(encoding="utf-8")
    policy = json.loads(policy_text)
    parts = envoy_parts()
    head = HEADER.format(policy=policy_path.resolve().relative_to(ROOT) if policy_path.resolve().is_relative_to(ROOT)
                         else policy_path)
    caveat = (
        "# The simple way, and NOT a working protection on its own: a WasmPlugin cannot set\n"
        "# allow_on_headers_stop_iteration (istio/api extensions/v1alpha1/wasm.proto has no field for it), and\n"
        "# without it Envoy 1.40 never hands scimguard the body: every SCIM write with a body stalls (never\n"
        "# judged, forwarded or answered; the application receives nothing), while reads and DELETEs work\n"
        "# (tests/e2e/test_deployed.py, docs/deploying.md). Use envoyfilter.yaml. Never apply both.\n")
    eg_caveat = (
        "# Envoy Gateway v1.9 cannot set allow_on_headers_stop_iteration from this policy (gateway#8382), and\n"
        "# without it every SCIM write with a body stalls (docs/deploying.md): apply envoypatchpolicy.yaml too\n"
        "# (needs extensionApis.enableEnvoyPatchPolicy in the EnvoyGateway config).\n")
    return {
        DEPLOY / "istio" / "envoyfilter.yaml": head + dump(istio_envoyfilter(policy_text, values, parts)),
        DEPLOY / "istio" / "wasmplugin.yaml": head + caveat + dump(istio_wasmplugin(policy, values, parts)),
        DEPLOY / "envoy-gateway" / "envoyextensionpolicy.yaml": head + eg_caveat + dump(eg_extension_policy(policy, values, parts)),
        DEPLOY / "envoy-gateway" / "envoypatchpolicy.yaml": head + dump(eg_patch_policy(values, parts)),
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1 << 20, allow_unicode=True)


def load_values(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "default.json")
    parser.add_argument("--values", type=Path, default=DEPLOY / "values.json")
    parser.add_argument("--digest", help="set values.json's manifest_digest first (sha256:<hex>)")
    parser.add_argument("--image", help="set values.json's image first (registry/repo:tag)")
    parser.add_argument("--check", action="store_true", help="compare with the shipped files; write nothing")
    args = parser.parse_args(argv)
    values = load_values(args.values)
    if args.digest or args.image:
        values.update({k: v for k, v in (("manifest_digest", args.digest), ("image", args.image)) if v})
        args.values.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    stale = []
    for path, text in render_all(args.policy, values).items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"render: wrote {path.relative_to(ROOT)}")
    if stale:
        print("render: differs from deploy/render.py's output: " + ", ".join(stale)
              + " (run `python3 deploy/render.py`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
