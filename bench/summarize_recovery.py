#!/usr/bin/env python3
"""Markdown table of bench/run-recovery.sh's JSON lines (stdin): per round,
the median over its reconnects of the time from reconnect to the last
missed event (and to the "connect" event), Go and Node, and the ratio
Node / Go of the former (above 1: Go recovers faster); then the medians
over all reconnects of the run.
    bench/run-recovery.sh | tee recovery.jsonl; bench/summarize_recovery.py < recovery.jsonl
"""
import json
import statistics
import sys

rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
by = {(r["round"], r["server"]): r["result"] for r in rows}
missed = rows[0]["result"]["missed"] if rows else 0
print(f"| round | Go reconnect→last ms | Go →connect ms | Node reconnect→last ms | Node →connect ms | Node / Go |")
print("|---:|---:|---:|---:|---:|---:|")
all_ = {"go": [], "node": []}
for rnd in sorted({k[0] for k in by}):
    g, n = by.get((rnd, "go")), by.get((rnd, "node"))
    if not g or not n:
        continue
    for s, r in (("go", g), ("node", n)):
        all_[s] += r["cycles"]
    print(f"| {rnd} | {g['median_reconnect_ms']:.1f} | {g['median_connect_ms']:.1f} | "
          f"{n['median_reconnect_ms']:.1f} | {n['median_connect_ms']:.1f} | "
          f"{n['median_reconnect_ms'] / g['median_reconnect_ms']:.2f} |")
print()
med = {s: statistics.median(c["reconnect_ms"] for c in v) for s, v in all_.items() if v}
con = {s: statistics.median(c["connect_ms"] for c in v) for s, v in all_.items() if v}
if len(med) == 2:
    print(f"All {len(all_['go'])} + {len(all_['node'])} reconnects, {missed} missed events each: "
          f"median reconnect→last Go {med['go']:.1f} ms, Node {med['node']:.1f} ms "
          f"(Node / Go {med['node'] / med['go']:.2f}); median to \"connect\" Go {con['go']:.1f} ms, "
          f"Node {con['node']:.1f} ms.")
