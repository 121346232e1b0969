#!/usr/bin/python3
"""Draws the fan-out benchmark results (JSON lines of bench/run-server.sh)
as an SVG chart and has headless Chromium render it to PNG.

    bench/run-server.sh 5000 4 12 24 36 40 > results.jsonl
    /usr/bin/python3 bench/plot_server.py results.jsonl docs/server-fanout.png
"""
import json
import os
import subprocess
import sys
import tempfile

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
out = os.path.abspath(sys.argv[2])
fan = [r for r in rows if r.get("kind", "fanout") == "fanout"]
mem = [r for r in rows if r.get("kind") == "memory"]
rates = sorted({r["rate"] for r in fan})
by = {(r["server"], r["rate"]): r["result"] for r in fan}
clients = fan[0]["result"]["clients"] if fan else 0
colors = {"go": "#2a7ab0", "node": "#7cb342"}
names = {"go": "siobridge (Go)", "node": "socket.io 4.8 (Node 20)"}
W, H = 1340, 440


def bars(x0, title, values, unit, fmt):
    """A grouped bar chart in the box starting at x0 (width 400)."""
    top = max(v for v in values.values()) * 1.15 or 1
    parts = [f'<text x="{x0 + 200}" y="30" text-anchor="middle" font-size="15" font-weight="bold">{title}</text>']
    base, height = 360, 290
    groups = sorted({k[1] for k in values}, key=lambda g: (isinstance(g, str), g))
    gw = 360 / len(groups)
    for i, g in enumerate(groups):
        gx = x0 + 30 + i * gw
        for j, srv in enumerate(["go", "node"]):
            v = values.get((srv, g), 0)
            h = height * v / top
            x = gx + 4 + j * (gw - 8) / 2
            w = (gw - 8) / 2 - 2
            parts.append(f'<rect x="{x:.0f}" y="{base - h:.0f}" width="{w:.0f}" height="{h:.0f}" fill="{colors[srv]}"/>')
            parts.append(f'<text x="{x + w / 2:.0f}" y="{base - h - 5:.0f}" text-anchor="middle" font-size="10">{fmt(v)}</text>')
        parts.append(f'<text x="{gx + gw / 2:.0f}" y="{base + 18}" text-anchor="middle" font-size="12">{g}</text>')
    parts.append(f'<line x1="{x0 + 25}" y1="{base}" x2="{x0 + 395}" y2="{base}" stroke="#333"/>')
    parts.append(f'<text x="{x0 + 200}" y="{base + 36}" text-anchor="middle" font-size="12">{unit}</text>')
    return "\n".join(parts)


delivered = {(s, r): by[(s, r)]["delivered_per_s"] for s, r in by}
p99 = {(s, r): by[(s, r)]["p99_ms"] for s, r in by}
rss = {(r["server"], f'{r["result"]["clients"]} clients'): r["result"]["rss_per_conn"] / 1024 for r in mem}
svg = f'''<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
{bars(20, f"Deliveries per second ({clients:,} clients, one room)", delivered, "fanout events per second sent", lambda v: f"{v/1000:.0f}k")}
{bars(470, "p99 fanout-to-receive latency (ms)", p99, "fanout events per second sent", lambda v: f"{v:,.0f}")}
{bars(920, "RSS per idle connection (KiB)", rss, "idle WebSocket clients", lambda v: f"{v:.1f}")}
<rect x="530" y="418" width="12" height="12" fill="{colors["go"]}"/><text x="547" y="428" font-size="12">{names["go"]}</text>
<rect x="680" y="418" width="12" height="12" fill="{colors["node"]}"/><text x="697" y="428" font-size="12">{names["node"]}</text>
</svg>'''
with tempfile.TemporaryDirectory() as d:
    page = os.path.join(d, "chart.html")
    with open(page, "w") as f:
        f.write(f"<html><body style='margin:0'>{svg}</body></html>")
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={d}/profile", f"--window-size={W},{H}", "--hide-scrollbars",
                    f"--screenshot={out}", "file://" + page], check=True, capture_output=True, timeout=60)
print(out)
