"""The SCIM upstream for scimguard's demos and e2e tests: scim2-server 0.8.3 on waitress.

Owns: building scim2-server's WSGI application exactly as its `scim2-server` CLI does
(default schemas, default resource types User/Group/EnterpriseUser, default service
provider config, `ScimProvider.from_discovery`, `ScimService`, `InMemoryStorage`,
`BearerTokenApplication`), with three additions:

* `--reverse-proxy`: wraps the app in scim2-server's own `ForwardedHeaders`, so behind
  Envoy's `prefix_rewrite: /v2/` + `x-forwarded-prefix: /scim` the `Location` header and
  `meta.location` say `http://<client-host>/scim/v2/...` (what the client used), not
  `/v2/...`.
* `--patch-200` (or `SCIM_UPSTREAM_PATCH_200=1`): PATCH answers 200 with the full
  resource instead of scim2-server's default 204 No Content (RFC 7644 §3.5.2 allows both;
  running both covers both response shapes).
* `--record FILE`: the `RecordingMiddleware` appends one JSON line per request received.

Why waitress and not the CLI's wsgiref server: wsgiref's `WSGIServer` speaks HTTP/1.0
and closes the connection after every response, so Envoy opens a new upstream
connection per request and connection reuse, pipelining and keep-alive races are never
exercised. waitress 3.0.2 is pure Python, speaks HTTP/1.1 with keep-alive, de-chunks
request bodies, and serves from a thread pool (`--threads`, default 8), which is what a
real SCIM service behind a proxy looks like.

Does not: persist anything (memory only), authenticate unless `--bearer-token` is given,
or listen anywhere but the given host (127.0.0.1 by default).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recording import RecordingMiddleware  # noqa: E402
from scim2_models import Context, ScimProvider  # noqa: E402
from scim2_server.applications.wsgi import ForwardedHeaders  # noqa: E402
from scim2_server.memory import InMemoryStorage  # noqa: E402
from scim2_server.service import ScimService  # noqa: E402
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication  # noqa: E402
from scim2_server.utils import (  # noqa: E402
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)


class Patch200Service(ScimService):
    """A ScimService whose PATCH answers 200 with the resource, never 204."""

    def patch_response(self, base_url: str, resource: Any, response_parameters: Any) -> Any:
        return self.resource_response(
            self.publish(base_url, resource),
            Context.RESOURCE_REPLACEMENT_RESPONSE,
            response_parameters,
            HTTPStatus.OK,
        )


def build_app(
    *,
    patch_200: bool = False,
    reverse_proxy: bool = True,
    record: str | None = None,
    bearer_tokens: list[str] | None = None,
) -> Any:
    """The WSGI app, built the way `scim2_server.testserver.cli.main` builds it."""
    config = load_default_service_provider_config()
    if bearer_tokens:
        config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=config,
    )
    secret = os.environ.get("SCIM2_SERVER_SECRET") or secrets.token_urlsafe(32)
    service_class = Patch200Service if patch_200 else ScimService
    app: Any = BearerTokenApplication(
        InMemoryStorage(),
        provider,
        service=service_class(provider, secret=secret),
        bearer_tokens=bearer_tokens or [],
    )
    if reverse_proxy:
        app = ForwardedHeaders(app)
    if record:
        # Outermost, so the recording shows the request exactly as it arrived.
        app = RecordingMiddleware(app, record)
    return app


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="scim-upstream %(levelname)s %(message)s")
    import waitress  # noqa: PLC0415 - imported late so `--help` works without it

    app = build_app(
        patch_200=args.patch_200,
        reverse_proxy=args.reverse_proxy,
        record=args.record,
        bearer_tokens=args.bearer_token,
    )
    print(f"Serving SCIM on http://{args.host}:{args.port}/v2 (waitress, HTTP/1.1)", flush=True)
    waitress.serve(app, host=args.host, port=args.port, threads=args.threads, ident="scim-upstream")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env_patch_200 = os.environ.get("SCIM_UPSTREAM_PATCH_200", "") not in ("", "0")
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--patch-200", action="store_true", default=env_patch_200,
                        help="PATCH answers 200 + resource (also SCIM_UPSTREAM_PATCH_200=1)")
    parser.add_argument("--reverse-proxy", action=argparse.BooleanOptionalAction, default=True,
                        help="trust X-Forwarded-* (Envoy sets x-forwarded-prefix: /scim)")
    parser.add_argument("--record", metavar="FILE", help="append one JSON line per request to FILE")
    parser.add_argument("--bearer-token", action="append", metavar="TOKEN")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
