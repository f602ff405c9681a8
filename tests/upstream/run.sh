#!/usr/bin/env bash
# `make run`: the demo gateway on fixed loopback ports.
#   SCIM upstream (scim2-server on waitress)  127.0.0.1:8080  /v2
#   Envoy 1.40 + scimguard.wasm               127.0.0.1:10000 /scim/v2   admin 127.0.0.1:9901
# Renders .run/envoy.yaml from envoy.yaml + $POLICY, starts both, creates a group
# "Administrators" through the gateway, prints commands to try, and stops both (by PID) on
# Ctrl-C or when either exits. Logs: .run/envoy.log, .run/upstream.log, .run/audit.log,
# .run/access.log; what the upstream received: .run/upstream.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUN=.run
VPY=.venv/bin/python
POLICY=${POLICY:-policies/default.json}
GATEWAY=http://127.0.0.1:10000/scim/v2
mkdir -p "$RUN"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped (logs in $RUN/)"
}
trap stop INT TERM EXIT

"$VPY" tests/envoy/render.py --policy "$POLICY" --wasm "${WASM:-target/wasm32-wasip1/release/scimguard.wasm}" --out "$RUN/envoy.yaml"
"$VPY" tests/upstream/scim_upstream.py --port 8080 --record "$RUN/upstream.jsonl" > "$RUN/upstream.log" 2>&1 &
pids+=($!)
.venv/bin/envoy -c "$RUN/envoy.yaml" --base-id 10000 --concurrency 2 \
  --log-path "$RUN/envoy.log" --file-flush-interval-msec 200 > "$RUN/envoy.stdout" 2>&1 &
pids+=($!)

# Wait for Envoy's /ready (the upstream starts faster), then create the demo group.
GROUP_ID=$("$VPY" - "$GATEWAY" <<'PY'
import json, sys, time, urllib.request
gateway = sys.argv[1]
deadline = time.monotonic() + 30
while True:
    try:
        urllib.request.urlopen("http://127.0.0.1:9901/ready", timeout=1)
        urllib.request.urlopen("http://127.0.0.1:8080/v2/ServiceProviderConfig", timeout=1)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("Envoy or the upstream did not become ready: see .run/envoy.log, .run/upstream.log")
        time.sleep(0.2)
body = json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "Administrators"}).encode()
request = urllib.request.Request(f"{gateway}/Groups", body, method="POST",
                                 headers={"content-type": "application/scim+json"})
try:
    print(json.load(urllib.request.urlopen(request, timeout=5))["id"])
except OSError as error:
    print(f"could not create the demo group through the gateway: {error}", file=sys.stderr)
    print("GROUP_ID")
PY
)

cat <<EOF

scimguard demo gateway: $GATEWAY  (admin http://127.0.0.1:9901, upstream http://127.0.0.1:8080/v2)
Group "Administrators" has id $GROUP_ID. Try:

  # 1. a benign user create: passes, tagged with x-scim-decision / x-scim-audit-id
  curl -si $GATEWAY/Users -H 'content-type: application/scim+json' -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen"}'

  # 2. adding a member to the privileged group: blocked with 403 before the upstream sees it
  curl -si -X PATCH $GATEWAY/Groups/$GROUP_ID -H 'content-type: application/scim+json' -d '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"2819c223-7f76-453a-919d-413861904646"}]}]}'

  # 3. the audit trail (one JSON line per SCIM write)
  tail -f $PWD/$RUN/audit.log

Ctrl-C stops both servers.
EOF

# Exit (and clean up) as soon as either server exits.
wait -n "${pids[@]}"
