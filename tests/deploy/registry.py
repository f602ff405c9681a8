"""A private OCI registry on 127.0.0.1 for the image tests, and skopeo to push into it.

Owns: starting Debian's `docker-registry` (CNCF distribution 2.8) with its own storage and a
free loopback port, stopping it by PID, and `skopeo copy` of an OCI layout into it (the same
command `make oci-push` runs). Nothing leaves the machine.

Does not: authenticate or use TLS (skopeo is told `--dest-tls-verify=false`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "deploy"))
from harness import Process, http_ok, spawn, wait_until_ready  # noqa: E402
from imagefetch import Registry  # noqa: E402
from ports import free_port  # noqa: E402

OCI_LAYOUT = ROOT / "target" / "oci"
TOOLS = ("docker-registry", "skopeo")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@contextmanager
def local_registry(workdir: Path) -> Iterator[tuple[Registry, str]]:
    """(client, "127.0.0.1:PORT") of a fresh registry, stopped on exit."""
    port = free_port()
    storage = workdir / "registry-storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        "log:\n  level: warn\n"
    )
    process: Process = spawn("registry", ["docker-registry", "serve", str(config)], workdir)
    try:
        wait_until_ready(process, lambda: http_ok(f"http://127.0.0.1:{port}/v2/"), 20, process.output)
        yield Registry(f"http://127.0.0.1:{port}"), f"127.0.0.1:{port}"
    finally:
        process.stop()


def skopeo_push(layout: Path, tag: str, destination: str, *, docker_format: bool = False) -> None:
    """Push the layout's `tag` to `destination` (host:port/repo:tag). The shipped image goes through
    `make oci-push` itself (skopeo, keeping the manifest bytes); `docker_format` converts it to Docker
    schema 2 media types with `skopeo --format v2s2` instead."""
    if docker_format:
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--format", "v2s2",
                f"oci:{layout}:{tag}", f"docker://{destination}"]
    else:
        argv = ["make", "--no-print-directory", "-C", str(ROOT), "oci-push", f"IMAGE={destination}",
                f"OCI_TAG={tag}", "OCI_PUSH_FLAGS=--dest-tls-verify=false"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def layout_tag(layout: Path = OCI_LAYOUT) -> str:
    """The one tag `make oci` wrote into the layout's index."""
    import json
    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])
