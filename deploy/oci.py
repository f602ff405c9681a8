"""Build scimguard's wasm image: a reproducible OCI image layout of the shipped `.wasm`.

Owns: the image format Istio's agent and Envoy Gateway's controller accept, the *compat*
variant of the Wasm OCI image spec (solo-io/wasm `spec/spec-compat.md`, read by istio/istio
`pkg/wasm/imagefetcher.go`): one `application/vnd.oci.image.layer.v1.tar+gzip` layer holding
`plugin.wasm`, and the annotation `module.wasm.image/variant=compat` on the manifest. The
same as a `FROM scratch` + `COPY plugin.wasm` image, without a container engine.

Reproducible: every byte is a function of the `.wasm` and the tag. The tar entry has mtime 0,
uid/gid 0, no user or group names, mode 0644 (ustar); the gzip header has mtime 0, no file
name and a fixed OS byte; JSON is written with sorted keys and no whitespace; nothing carries
a creation time. Rebuilding gives the same manifest digest, which is what an `oci://` URL's
`sha256` pins (the MANIFEST digest, not the .wasm's hash: istio/istio `pkg/wasm/cache.go`).

    python3 deploy/oci.py --wasm target/wasm32-wasip1/release/scimguard.wasm \
        --out target/oci --tag 0.1.0          # prints the manifest digest

Push it with skopeo (`make oci-push IMAGE=registry/repo:tag`), which keeps the manifest bytes
(`--preserve-digests`), so the pushed digest is the one printed here.

Does not: push, sign, or build other variants (tests build the others to check the fetcher).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
VARIANT_ANNOTATION = "module.wasm.image/variant"
PLUGIN_FILE = "plugin.wasm"


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no whitespace: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(wasm: bytes) -> bytes:
    """An uncompressed tar with the one entry `plugin.wasm`, no timestamps or owners."""
    info = tarfile.TarInfo(PLUGIN_FILE)
    info.size, info.mode, info.mtime = len(wasm), 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(wasm))
    return buffer.getvalue()


def gzip_fixed(data: bytes) -> bytes:
    """gzip with mtime 0 and no file name in the header; OS byte fixed to 255 (unknown)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as out:
        out.write(data)
    compressed = bytearray(buffer.getvalue())
    compressed[9] = 255  # the OS byte differs between platforms' zlib builds
    return bytes(compressed)


def descriptor(media_type: str, data: bytes, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"mediaType": media_type, "digest": digest(data), "size": len(data)}
    if annotations:
        found["annotations"] = annotations
    return found


def compat_image(wasm: bytes) -> tuple[bytes, dict[str, bytes]]:
    """(manifest bytes, {digest: blob}) of the compat variant holding `wasm`."""
    tar = layer_tar(wasm)
    layer = gzip_fixed(tar)
    config = canonical_json({
        "architecture": "wasm", "os": "wasip1", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest(tar)]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer)],
        "annotations": {VARIANT_ANNOTATION: "compat", "org.opencontainers.image.title": "scimguard"},
    })
    return manifest, {digest(config): config, digest(layer): layer}


def write_layout(out: Path, tag: str, manifest: bytes, blobs: dict[str, bytes]) -> str:
    """Write an OCI image layout (oci-layout, index.json, blobs/sha256/*); returns the digest."""
    if out.exists():
        shutil.rmtree(out)
    blob_dir = out / "blobs" / "sha256"
    blob_dir.mkdir(parents=True)
    for blob_digest, blob in {**blobs, digest(manifest): manifest}.items():
        (blob_dir / blob_digest.removeprefix("sha256:")).write_bytes(blob)
    (out / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [descriptor(OCI_MANIFEST, manifest, {"org.opencontainers.image.ref.name": tag})]}
    (out / "index.json").write_bytes(canonical_json(index))
    return digest(manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wasm", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the OCI layout directory (replaced)")
    parser.add_argument("--tag", default="latest")
    args = parser.parse_args(argv)
    manifest, blobs = compat_image(args.wasm.read_bytes())
    manifest_digest = write_layout(args.out, args.tag, manifest, blobs)
    (args.out.parent / f"{args.out.name}.digest").write_text(manifest_digest + "\n")
    print(manifest_digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
