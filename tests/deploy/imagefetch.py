"""Pull a wasm image from a registry and extract the module the way Istio's agent does.

Owns: a minimal OCI distribution client (manifest and blobs over plain HTTP, push for test
images) and `extract`, which applies the rules of istio/istio `pkg/wasm/imagefetcher.go`
(`PrepareFetch` and the `extract*` functions), so a test can say "Istio would load this":

1. a manifest of media type `application/vnd.docker.distribution.manifest.v2+json`: the LAST
   layer must be `application/vnd.docker.image.rootfs.diff.tar.gzip`; the module is the tar
   entry whose base name is `plugin.wasm` (compat variant, Docker media types);
2. otherwise, compat variant with OCI media types: the LAST layer must be
   `application/vnd.oci.image.layer.v1.tar+gzip`, `plugin.wasm` inside;
3. otherwise, the *oci* variant: exactly two layers, one of them
   `application/vnd.module.wasm.content.layer.v1+wasm`, whose raw bytes are the module;
4. anything else is refused. So a single `application/vnd.module.wasm.content.layer.v1+wasm`
   layer (what some wasm OCI tools push) is refused: not compat, and not two layers.

And the pin Istio checks (`pkg/wasm/cache.go`): the `sha256` of an `oci://` URL is compared
with the MANIFEST digest (sha256 of the manifest bytes as served), never with the module's.

Does not: authenticate, follow indexes (multi-platform images), or talk TLS.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
PLUGIN_FILE = "plugin.wasm"


class ImageError(Exception):
    """The image is not one Istio's agent would load (the message says why)."""


@dataclass
class Pulled:
    manifest: dict[str, Any]
    manifest_digest: str  # "sha256:<hex>" of the manifest bytes as served
    blobs: dict[str, bytes]


class Registry:
    """The OCI distribution API of a plain-HTTP registry at `base` (http://host:port)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def pull(self, repo: str, reference: str) -> Pulled:
        accept = ", ".join([OCI_MANIFEST, DOCKER_MANIFEST])
        raw = self._get(f"/v2/{repo}/manifests/{reference}", {"Accept": accept})
        manifest = json.loads(raw)
        blobs = {layer["digest"]: self.blob(repo, layer["digest"]) for layer in manifest.get("layers", [])}
        return Pulled(manifest, "sha256:" + hashlib.sha256(raw).hexdigest(), blobs)

    def blob(self, repo: str, blob_digest: str) -> bytes:
        data = self._get(f"/v2/{repo}/blobs/{blob_digest}", {})
        if "sha256:" + hashlib.sha256(data).hexdigest() != blob_digest:
            raise ImageError(f"blob {blob_digest} does not match its digest")
        return data

    def push(self, repo: str, tag: str, manifest: bytes, media_type: str, blobs: dict[str, bytes]) -> None:
        """Upload blobs (monolithic POST + PUT) and the manifest under `tag`."""
        for blob_digest, data in blobs.items():
            request = urllib.request.Request(f"{self.base}/v2/{repo}/blobs/uploads/", method="POST", data=b"")
            with urllib.request.urlopen(request, timeout=10) as response:
                location = response.headers["Location"]
            url = location if location.startswith("http") else self.base + location
            url += ("&" if "?" in url else "?") + f"digest={blob_digest}"
            put = urllib.request.Request(url, method="PUT", data=data,
                                         headers={"Content-Type": "application/octet-stream"})
            urllib.request.urlopen(put, timeout=10).close()
        put = urllib.request.Request(f"{self.base}/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
                                     headers={"Content-Type": media_type})
        urllib.request.urlopen(put, timeout=10).close()

    def _get(self, path: str, headers: dict[str, str]) -> bytes:
        with urllib.request.urlopen(urllib.request.Request(self.base + path, headers=headers), timeout=10) as r:
            return bytes(r.read())


def fetch(registry: Registry, repo: str, reference: str, expected_sha256: str | None = None) -> tuple[bytes, str]:
    """(module bytes, manifest digest) of `repo:reference`; `expected_sha256` pins the manifest."""
    pulled = registry.pull(repo, reference)
    if expected_sha256 is not None and pulled.manifest_digest != "sha256:" + expected_sha256:
        raise ImageError(f"module downloaded from {repo}:{reference} has checksum "
                         f"{pulled.manifest_digest}, which does not match: {expected_sha256}")
    return extract(pulled), pulled.manifest_digest


def extract(pulled: Pulled) -> bytes:
    """The module, by Istio's rules (see the module docs); ImageError when refused."""
    layers = pulled.manifest.get("layers") or []
    if pulled.manifest.get("mediaType") == DOCKER_MANIFEST:
        return _compat(pulled, layers, DOCKER_LAYER)
    try:
        return _compat(pulled, layers, OCI_LAYER)
    except ImageError as compat_error:
        try:
            return _oci_variant(pulled, layers)
        except ImageError as oci_error:
            raise ImageError(f"the given image is in invalid format as an OCI image: could not parse as "
                             f"compat variant: {compat_error}; could not parse as oci variant: {oci_error}") from None


def _compat(pulled: Pulled, layers: list[dict[str, Any]], media_type: str) -> bytes:
    if not layers:
        raise ImageError("number of layers must be greater than zero")
    last = layers[-1]
    if last.get("mediaType") != media_type:
        raise ImageError(f"invalid media type {last.get('mediaType')} (expect {media_type})")
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(pulled.blobs[last["digest"]]))) as tar:
            for member in tar:
                if PurePosixPath(member.name).name == PLUGIN_FILE:
                    reader = tar.extractfile(member)
                    if reader is None:
                        raise ImageError(f"{PLUGIN_FILE} is not a regular file")
                    return reader.read()
    except (OSError, tarfile.TarError) as error:
        raise ImageError(f"failed to parse layer as tar.gz: {error}") from None
    raise ImageError(f"{PLUGIN_FILE} not found in the archive")


def _oci_variant(pulled: Pulled, layers: list[dict[str, Any]]) -> bytes:
    if len(layers) != 2:
        raise ImageError(f"number of layers must be 2 but got {len(layers)}")
    for layer in layers:
        if layer.get("mediaType") == WASM_LAYER:
            return pulled.blobs[layer["digest"]]
    raise ImageError(f"could not find the layer of type {WASM_LAYER}")
