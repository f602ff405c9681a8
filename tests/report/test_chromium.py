#!/usr/bin/env python3
"""The HTML dashboard in headless Chromium: the page renders offline, its script runs, and the key
numbers in the rendered DOM equal the generator's expectations.

Usage: test_chromium.py --trail DIR [--bin target/debug/scimguard] [--out DIR]
Writes DIR/report.html and DIR/report.png (look at it), prints one line per check and a closing
`N passed, N failed`; exit 1 on any failure.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  # Any fetch the page tried would fail: it must not need one.
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000"]


class Dom(HTMLParser):
    """Elements with an id or data-* attributes, with their attributes and text."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.elements = []  # (tag, attrs)
        self.stack = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        a["_text"] = ""
        self.elements.append((tag, a))
        if "id" in a:
            self.by_id[a["id"]] = a
        if tag not in ("br", "img", "input", "meta", "line", "rect", "path", "col", "hr"):
            self.stack.append(a)

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for a in self.stack:
            a["_text"] += data


def chromium(*args):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise SystemExit("chromium not found: apt-get install -y chromium (or `make chromium`)")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        p = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                           capture_output=True, text=True, timeout=120, check=False)
    if p.returncode != 0:
        raise AssertionError(f"chromium exit {p.returncode}: {p.stderr[-500:]}")
    return p.stdout


def dom(url):
    d = Dom()
    d.feed(chromium("--dump-dom", url))
    return d


def digits(text):
    return int(re.sub(r"\D", "", text) or -1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trail", type=Path, required=True, help="a directory written by trail.py")
    ap.add_argument("--bin", default=str(ROOT / "target/debug/scimguard"))
    ap.add_argument("--out", type=Path, help="where report.html and report.png go (default: --trail)")
    a = ap.parse_args()
    out = (a.out or a.trail).resolve()
    out.mkdir(parents=True, exist_ok=True)
    exp = json.loads((a.trail / "expected.json").read_text())
    want = exp["cases"]["all"]
    html = out / "report.html"
    png = out / "report.png"
    files = [str(a.trail / f) for f in exp["files"]]
    subprocess.run([a.bin, "report", "--now", exp["now"], "--format", "html", "--out", str(html), *files],
                   check=True, capture_output=True)
    url = html.as_uri()
    checks = []

    def check(fn):
        checks.append(fn)
        return fn

    page = dom(url)

    @check
    def script_ran():
        body = next((at for tag, at in page.elements if tag == "body"), {})
        assert body.get("data-ready") == "1", "the page's script did not finish (body[data-ready] unset)"

    @check
    def self_contained():
        text = html.read_text()
        for bad in ('src="http', 'href="http', "url(http", "@import", "<link", "<iframe"):
            assert bad not in text, f"the page fetches something: {bad}"

    @check
    def kpi_cards():
        cards = {k[4:]: v for k, v in page.by_id.items() if k.startswith("kpi-")}
        assert len(cards) >= 9, f"only {len(cards)} KPI cards"
        for name, el in cards.items():
            expected = exp["input"]["malformed_lines"] if name == "malformed_lines" else want["summary"][name]
            assert int(el["data-value"]) == expected, f"kpi-{name}: data-value {el['data-value']}, want {expected}"
            num = digits(re.match(r"[\d\u202f]*", el["_text"].strip()).group(0))
            assert num == expected, f"kpi-{name}: shows {num}, want {expected}"

    @check
    def every_summary_number():
        for k, v in want["summary"].items():
            el = page.by_id.get(f"summary-{k}")
            assert el is not None, f"no #summary-{k}"
            assert int(el["data-value"]) == v, f"#summary-{k}: {el['data-value']}, want {v}"

    @check
    def section_counts():
        counts = {}
        for tag, at in page.elements:
            if "data-count" in at and at.get("class") == "count":
                counts.setdefault("n", []).append(int(at["data-count"]))
        s = want["summary"]
        need = [s["admin_role_grants"], s["privileged_blocked_attempts"], s["stale_accounts"],
                s["active_after_blocked_deprovision"], s["reactivated_after_deprovision"]]
        assert counts.get("n") == need, f"section counts {counts.get('n')}, want {need}"

    @check
    def privileged_group_cards():
        cards = {at["data-group-id"]: int(at["data-members"]) for tag, at in page.elements if "data-group-id" in at}
        expected = {g: len(m) for g, m in want["privileged_groups"].items()}
        assert cards == expected, f"group cards {cards}, want {expected}"

    def bars(svg_id):
        """data-total of each bar of one chart."""
        out, inside = [], None
        for tag, at in page.elements:
            if tag == "svg":
                inside = at.get("id")
            if tag == "g" and at.get("class") == "bar" and inside == svg_id:
                out.append(int(at["data-total"]))
        return out

    @check
    def activity_chart_sums_to_applied_events():
        total = sum(bars("activity-chart"))
        assert total == want["summary"]["events_applied"], f"activity bars sum to {total}, want {want['summary']['events_applied']}"

    @check
    def high_risk_chart_sums_to_high_risk_writes():
        total = sum(bars("high-risk-chart"))
        assert total == want["summary"]["high_risk_writes"], f"high-risk bars sum to {total}"

    @check
    def table_lists_every_timeline_entry():
        m = page.by_id["events-match"]
        assert int(m["data-count"]) == want["timelines"]["rows"], f"table: {m['data-count']} rows, want {want['timelines']['rows']}"
        rows = [at for tag, at in page.elements if tag == "tr" and "data-kind" in at]
        assert len(rows) == min(300, want["timelines"]["rows"]), f"{len(rows)} rows rendered"

    @check
    def table_filters_by_kind_and_text():
        for kind in ("user_deprovisioned", "user_reactivated", "role_changed"):
            d = dom(url + "#kind=" + kind)
            got = int(d.by_id["events-match"]["data-count"])
            assert got == want["timelines"]["rows_by_kind"].get(kind, 0), f"#kind={kind}: {got} rows, want {want['timelines']['rows_by_kind'].get(kind)}"
            kinds = {at["data-kind"] for tag, at in d.elements if tag == "tr" and "data-kind" in at}
            assert kinds <= {kind}, f"#kind={kind} shows {kinds}"
        d = dom(url + "#q=zz-no-such-user-zz")
        assert d.by_id["events-match"]["data-count"] == "0", "a text filter that matches nothing still shows rows"

    @check
    def screenshot():
        chromium(f"--screenshot={png}", "--window-size=1400,2000", url)
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000, f"screenshot {png} looks empty ({len(data)} bytes)"

    passed = failed = 0
    for fn in checks:
        try:
            fn()
            passed += 1
            print(f"ok     {fn.__name__}")
        except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAILED {fn.__name__}: {e}")
    print(f"screenshot: {png}")
    print(f"chromium: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
