"""The wasm image: reproducible, pushed to a real registry with skopeo, pulled back and unpacked
by Istio's rules (tests/deploy/imagefetch.py), and refused when it does not conform.

Runs against `make oci`'s layout in target/oci (built from the shipped .wasm) and a private
`docker-registry` on 127.0.0.1 (Debian package; `make test-deploy` installs it and skopeo).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imagefetch import OCI_MANIFEST, WASM_LAYER, ImageError, Registry, extract, fetch  # noqa: E402
from registry import OCI_LAYOUT, ROOT, layout_tag, local_registry, missing_tools, skopeo_push  # noqa: E402

sys.path.insert(0, str(ROOT / "deploy"))
import oci  # noqa: E402  (deploy/oci.py)

WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "scimguard.wasm"


def require_layout() -> None:
    if not (OCI_LAYOUT / "index.json").is_file() or not WASM.is_file():
        pytest.fail("target/oci is missing: run `make oci` (it builds the .wasm first)", pytrace=False)
    if missing_tools():
        pytest.fail(f"missing {', '.join(missing_tools())}: run `make deploy-tools`", pytrace=False)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, str]]:
    require_layout()
    with local_registry(tmp_path_factory.mktemp("registry")) as found:
        yield found


def layout_digest() -> str:
    return (ROOT / "target" / "oci.digest").read_text().strip()


def test_image_is_the_compat_variant_of_the_shipped_wasm() -> None:
    require_layout()
    manifest = json.loads((OCI_LAYOUT / "blobs" / "sha256" / layout_digest().removeprefix("sha256:")).read_bytes())
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    blob = (OCI_LAYOUT / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        [member] = tar.getmembers()
        assert (member.name, member.mtime, member.uid, member.gid, member.uname) == ("plugin.wasm", 0, 0, 0, "")
        reader = tar.extractfile(member)
        assert reader is not None and reader.read() == WASM.read_bytes()


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    require_layout()
    subprocess.run([sys.executable, str(ROOT / "deploy" / "oci.py"), "--wasm", str(WASM), "--out",
                    str(tmp_path / "oci"), "--tag", layout_tag()], check=True, capture_output=True)
    first = {p.relative_to(OCI_LAYOUT): p.read_bytes() for p in OCI_LAYOUT.rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "oci"): p.read_bytes() for p in (tmp_path / "oci").rglob("*") if p.is_file()}
    assert first == second
    assert (tmp_path / "oci.digest").read_text() == (ROOT / "target" / "oci.digest").read_text()


def test_pushed_with_skopeo_pulled_back_by_istio_rules(registry: tuple[Registry, str], summary: list[str]) -> None:
    client, host = registry
    skopeo_push(OCI_LAYOUT, layout_tag(), f"{host}/scimguard:{layout_tag()}")
    # The pin of an oci:// URL is the manifest digest: the one `make oci` printed survives the push.
    module, manifest_digest = fetch(client, "scimguard", layout_tag(), layout_digest().removeprefix("sha256:"))
    assert manifest_digest == layout_digest()
    assert hashlib.sha256(module).hexdigest() == hashlib.sha256(WASM.read_bytes()).hexdigest()
    # ... and it is not the module's hash: a WasmPlugin pinned with that would be refused.
    with pytest.raises(ImageError, match="does not match"):
        fetch(client, "scimguard", layout_tag(), hashlib.sha256(module).hexdigest())
    summary.append(f"deploy: image pushed with skopeo and pulled back, manifest {manifest_digest[:19]}…, "
                   f".wasm sha256 matches ({len(module)} bytes)")


def test_docker_media_types_are_accepted(registry: tuple[Registry, str]) -> None:
    client, host = registry
    skopeo_push(OCI_LAYOUT, layout_tag(), f"{host}/scimguard:docker", docker_format=True)
    pulled = client.pull("scimguard", "docker")
    assert pulled.manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert pulled.manifest["layers"][-1]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert extract(pulled) == WASM.read_bytes()


def push_raw(client: Registry, tag: str, layers: list[tuple[str, bytes]], config_type: str) -> None:
    config = b"{}"
    manifest = oci.canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": oci.descriptor(config_type, config),
        "layers": [oci.descriptor(media_type, data) for media_type, data in layers],
    })
    blobs = {oci.digest(data): data for _, data in layers} | {oci.digest(config): config}
    client.push("scimguard", tag, manifest, OCI_MANIFEST, blobs)


def test_two_layer_oci_variant_is_accepted(registry: tuple[Registry, str]) -> None:
    client, _ = registry
    wasm = WASM.read_bytes()
    push_raw(client, "oci-variant", [(WASM_LAYER, wasm), ("application/vnd.module.wasm.config.v1+json", b"{}")],
             "application/vnd.module.wasm.config.v1+json")
    assert extract(client.pull("scimguard", "oci-variant")) == wasm


@pytest.mark.parametrize("name, layers, reason", [
    ("single-wasm-layer", lambda w: [(WASM_LAYER, w)], "number of layers must be 2 but got 1"),
    ("no-plugin-wasm", lambda w: [(oci.OCI_LAYER, oci.gzip_fixed(oci_tar("module.wasm", w)))],
     "plugin.wasm not found"),
    ("not-gzip", lambda w: [(oci.OCI_LAYER, w)], "failed to parse layer as tar.gz"),
])
def test_non_conforming_image_is_refused(registry: tuple[Registry, str], name: str, layers, reason: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = registry
    push_raw(client, name, layers(WASM.read_bytes()), oci.OCI_CONFIG)
    with pytest.raises(ImageError, match=reason):
        extract(client.pull("scimguard", name))


def oci_tar(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
