#!/usr/bin/python3
"""Draws the fan-out benchmark results (JSON lines of bench/run-server.sh)
as an SVG chart and has headless Chromium render it to PNG.

    bench/run-server.sh 5000 10 20 40 > results.jsonl
    /usr/bin/python3 bench/plot_server.py results.jsonl docs/server-fanout.png
"""
import json
import os
import subprocess
import sys
import tempfile

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
out = os.path.abspath(sys.argv[2])
rates = sorted({r["rate"] for r in rows})
by = {(r["server"], r["rate"]): r["result"] for r in rows}
colors = {"go": "#2a7ab0", "node": "#7cb342"}
names = {"go": "siobridge (Go)", "node": "socket.io 4.8 (Node 20)"}
W, H = 900, 440


def bars(x0, title, values, unit, fmt):
    """A grouped bar chart in the box starting at x0 (width 400)."""
    top = max(v for v in values.values()) * 1.15 or 1
    parts = [f'<text x="{x0 + 200}" y="30" text-anchor="middle" font-size="16" font-weight="bold">{title}</text>']
    base, height = 360, 290
    groups = sorted({k[1] for k in values})
    gw = 360 / len(groups)
    for i, g in enumerate(groups):
        gx = x0 + 30 + i * gw
        for j, srv in enumerate(["go", "node"]):
            v = values.get((srv, g), 0)
            h = height * v / top
            x = gx + 10 + j * (gw - 20) / 2
            w = (gw - 20) / 2 - 4
            parts.append(f'<rect x="{x:.0f}" y="{base - h:.0f}" width="{w:.0f}" height="{h:.0f}" fill="{colors[srv]}"/>')
            parts.append(f'<text x="{x + w / 2:.0f}" y="{base - h - 5:.0f}" text-anchor="middle" font-size="11">{fmt(v)}</text>')
        parts.append(f'<text x="{gx + gw / 2:.0f}" y="{base + 18}" text-anchor="middle" font-size="12">{g}</text>')
    parts.append(f'<line x1="{x0 + 25}" y1="{base}" x2="{x0 + 395}" y2="{base}" stroke="#333"/>')
    parts.append(f'<text x="{x0 + 200}" y="{base + 36}" text-anchor="middle" font-size="12">{unit}</text>')
    return "\n".join(parts)


delivered = {(s, r): by[(s, r)]["delivered_per_s"] for s, r in by}
rss = {(s, "idle"): sum(by[(s, r)]["rss_per_conn"] for r in rates if (s, r) in by) / len(rates) / 1024 for s in ("go", "node")}
svg = f'''<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
{bars(20, "Deliveries per second (5,000 clients, one room)", delivered, "fanout events per second sent", lambda v: f"{v/1000:.0f}k")}
{bars(480, "RSS per idle connection", rss, "KiB per connection", lambda v: f"{v:.1f}")}
<rect x="330" y="418" width="12" height="12" fill="{colors["go"]}"/><text x="347" y="428" font-size="12">{names["go"]}</text>
<rect x="480" y="418" width="12" height="12" fill="{colors["node"]}"/><text x="497" y="428" font-size="12">{names["node"]}</text>
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
