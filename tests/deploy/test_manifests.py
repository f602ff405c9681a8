"""deploy/ manifests: exactly what deploy/render.py renders, valid against the CRD schemas of
Istio 1.30.3 and Envoy Gateway v1.9.0 (unknown fields rejected), and the Envoy config inside
them accepted by Envoy 1.40 (`envoy --mode validate`).

The CRD schemas come from ../shared/crds beside the clone (CI keeps a copy there); where that
folder is absent the schema tests skip, saying so. What a CRD schema cannot check: CEL rules
(`x-kubernetes-validations`) and the free-form Envoy config in an EnvoyFilter patch (marked
`x-kubernetes-preserve-unknown-fields`); the Envoy validation below covers the latter.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import render  # noqa: E402  (deploy/render.py)
from harness import envoy_binary, free_port  # noqa: E402

# SCIMGUARD_CRDS points elsewhere (e.g. a git worktree, whose ../shared is not the clone's).
CRDS = Path(os.environ.get("SCIMGUARD_CRDS", ROOT.parent / "shared" / "crds"))
CRD_FILES = {
    ("networking.istio.io", "EnvoyFilter"): "istio-1.30.3-crd-all.gen.yaml",
    ("extensions.istio.io", "WasmPlugin"): "istio-1.30.3-crd-all.gen.yaml",
    ("gateway.envoyproxy.io", "EnvoyExtensionPolicy"): "eg-1.9.0-envoyextensionpolicies.yaml",
    ("gateway.envoyproxy.io", "EnvoyPatchPolicy"): "eg-1.9.0-envoypatchpolicies.yaml",
}
SHIPPED = sorted((ROOT / "deploy").glob("*/*.yaml"))
MANIFESTS = [p for p in SHIPPED if p.parent.name in ("istio", "envoy-gateway")]


def test_shipped_manifests_are_the_rendered_ones(summary: list[str]) -> None:
    values = render.load_values(ROOT / "deploy" / "values.json")
    rendered = render.render_all(ROOT / "policies" / "default.json", values)
    assert sorted(rendered) == MANIFESTS, "deploy/ has a manifest render.py does not write (or misses one)"
    for path, text in rendered.items():
        assert path.read_text(encoding="utf-8") == text, f"{path.relative_to(ROOT)}: run `make deploy-render`"
    # Not a failure: the digest pins a released image, and any change to the filter changes the
    # .wasm; the release step is `make oci oci-push deploy-render DIGEST=...` (docs/deploying.md).
    built = ROOT / "target" / "oci.digest"
    if built.is_file():
        same = built.read_text().strip() == values["manifest_digest"]
        summary.append("deploy: the shipped manifests pin " + ("the image `make oci` builds from this .wasm" if same
                       else f"{values['manifest_digest'][:19]}…, not this build's {built.read_text().strip()[:19]}… "
                       "(re-render for a release)"))


def test_envoyfilter_carries_the_policy_bytes_and_the_manifest_digest() -> None:
    values = render.load_values(ROOT / "deploy" / "values.json")
    patches = yaml.safe_load((ROOT / "deploy/istio/envoyfilter.yaml").read_text())["spec"]["configPatches"]
    config = patches[0]["patch"]["value"]["typed_config"]["config"]
    assert config["configuration"]["value"] == (ROOT / "policies/default.json").read_text(encoding="utf-8")
    assert config["allow_on_headers_stop_iteration"] is True
    assert config["failure_policy"] != "FAIL_OPEN"
    remote = config["vm_config"]["code"]["remote"]
    assert remote["http_uri"]["uri"] == "oci://" + values["image"]
    assert "sha256:" + remote["sha256"] == values["manifest_digest"]


def crd_schema(group: str, kind: str, version: str) -> dict[str, Any]:
    if not CRDS.is_dir():
        pytest.skip(f"CRD schemas not found at {CRDS} (keep a copy of shared/ beside the clone)")
    for document in yaml.safe_load_all((CRDS / CRD_FILES[(group, kind)]).read_text()):
        if document and document["spec"]["group"] == group and document["spec"]["names"]["kind"] == kind:
            for served in document["spec"]["versions"]:
                if served["name"] == version:
                    schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
                    # Every object has these; Istio's CRDs leave them out of the schema.
                    for field, kind in (("apiVersion", "string"), ("kind", "string"), ("metadata", "object")):
                        schema["properties"].setdefault(field, {"type": kind})
                    return strict(schema)
    raise AssertionError(f"{group}/{version} {kind} not in {CRD_FILES[(group, kind)]}")


def strict(schema: Any) -> Any:
    """The CRD schema as JSON Schema with unknown fields rejected, as the API server prunes
    them (and `kubectl apply --validate=strict` refuses them): every object with `properties`
    gets `additionalProperties: false` unless it keeps unknown fields on purpose."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT / "deploy")))
def test_manifest_is_valid_against_its_crd(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        group, version = document["apiVersion"].split("/")
        schema = crd_schema(group, document["kind"], version)
        jsonschema.validate(document, schema)
        metadata = document["metadata"]
        assert set(metadata) <= {"name", "namespace", "labels", "annotations"} and metadata["name"]


def test_schema_check_rejects_an_unknown_field() -> None:
    """The check above is not vacuous: a misspelt field, the one the issue is about, fails it."""
    document = yaml.safe_load((ROOT / "deploy/istio/wasmplugin.yaml").read_text())
    document["spec"]["allowOnHeadersStopIteration"] = True
    with pytest.raises(jsonschema.ValidationError, match="allowOnHeadersStopIteration"):
        jsonschema.validate(document, crd_schema("extensions.istio.io", "WasmPlugin", "v1alpha1"))


def envoyfilter_bootstrap() -> dict[str, Any]:
    """A bootstrap that applies the EnvoyFilter's patches the way istiod would to an inbound
    listener: the EXTENSION_CONFIG inlined where the HTTP_FILTER patch loads it, the HCM MERGE
    (audit access log, early header mutation), the listener and cluster buffer limits."""
    patches = yaml.safe_load((ROOT / "deploy/istio/envoyfilter.yaml").read_text())["spec"]["configPatches"]
    by_kind = {p["applyTo"]: p["patch"]["value"] for p in patches}
    hcm = copy.deepcopy(by_kind["NETWORK_FILTER"]["typed_config"])
    hcm.update({"stat_prefix": "inbound", "route_config": {"virtual_hosts": [{
        "name": "app", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}]}]},
        "http_filters": [{"name": by_kind["HTTP_FILTER"]["name"],
                          "typed_config": by_kind["EXTENSION_CONFIG"]["typed_config"]},
                         {"name": "envoy.filters.http.router", "typed_config": {
                             "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]})
    address = {"socket_address": {"address": "127.0.0.1", "port_value": free_port()}}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": free_port()}}},
        "static_resources": {
            "listeners": [{"name": "virtualInbound", "address": address, **by_kind["LISTENER"],
                           "filter_chains": [{"filters": [{"name": render.HCM, "typed_config": hcm}]}]}],
            "clusters": [{"name": name, "type": "STATIC", "connect_timeout": "1s", **by_kind["CLUSTER"],
                          "load_assignment": {"cluster_name": name, "endpoints": []}} for name in ("app", "_")],
        },
    }


def test_envoyfilter_envoy_config_validates_in_envoy(tmp_path: Path) -> None:
    """Envoy 1.40 accepts every field the EnvoyFilter carries (`--mode validate` does not fetch
    the oci:// code; the e2e suite loads it for real, tests/e2e/test_deployed.py)."""
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps(envoyfilter_bootstrap()))
    result = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "OK" in result.stdout + result.stderr


def test_a_misspelt_envoy_field_fails_envoy_validation(tmp_path: Path) -> None:
    """The validation above is not vacuous."""
    bootstrap = envoyfilter_bootstrap()
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"][0]["typed_config"]["config"]["allow_on_header_stop_iteration"] = True
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps(bootstrap))
    result = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "allow_on_header_stop_iteration" in result.stdout + result.stderr
