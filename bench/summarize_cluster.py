#!/usr/bin/env python3
"""Markdown tables of bench/run-cluster.sh's and bench/run-sharded.sh's JSON
lines (stdin): per round and rate, delivered msgs/s, p50/p99 latency and the
Go/Node (cluster, classic, sharded) or with-adapter/without (adapter) ratio
of delivered rates, then the median ratio per rate.
    bench/run-cluster.sh | tee results.jsonl; bench/summarize_cluster.py < results.jsonl
    bench/run-sharded.sh | tee sharded.jsonl; bench/summarize_cluster.py < sharded.jsonl
"""
import json
import statistics
import sys

rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
by = {(r["kind"], r["round"], r["rate"], r["server"]): r["result"] for r in rows}


def cell(r):
    lost = f", {r['undelivered']:,} undelivered" if r.get("undelivered") else ""
    dup = f", {r['duplicates']} dup" if r.get("duplicates") else ""
    return f"{r['delivered_per_s']:,.0f} | {r['p50_ms']:,.1f} | {r['p99_ms']:,.1f}{lost}{dup}"


def table(kind, a, b, title_a, title_b, ratio):
    keys = sorted({(k[1], k[2]) for k in by if k[0] == kind}, key=lambda k: (k[1], k[0]))
    if not keys:
        return
    print(f"| rate /s | round | {title_a} msgs/s | p50 ms | p99 ms | {title_b} msgs/s | p50 ms | p99 ms | {ratio} |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    for rnd, rate in keys:
        ra, rb = by.get((kind, rnd, rate, a)), by.get((kind, rnd, rate, b))
        if not ra or not rb:
            continue
        # nothing measured arrived at b (a backlog of warm-up ticks still
        # being delivered when the load generator stopped waiting): no ratio
        q = ra['delivered_per_s'] / rb['delivered_per_s'] if rb['delivered_per_s'] > 0 else float("inf")
        ratios.setdefault(rate, []).append(q)
        print(f"| {rate} ({rate * ra['clients']:,}/s offered) | {rnd} | {cell(ra)} | {cell(rb)} | {q:.2f} |")
    print()
    for rate, rs in sorted(ratios.items()):
        print(f"{kind}, rate {rate}: {ratio} median {statistics.median(rs):.2f} "
              f"(min {min(rs):.2f}, max {max(rs):.2f}, {len(rs)} rounds)")
    print()


table("cluster", "go-cluster", "node-cluster", "Go", "Node", "Go / Node")
table("adapter", "go-redis", "go-single", "with Redis adapter", "single process", "with / without")
table("adapter", "go-redis-detached", "go-single", "with adapter, detached handler", "single process", "with / without")
table("classic", "go-classic", "node-classic", "Go, one Redis", "Node, one Redis", "Go / Node")
table("sharded", "go-sharded", "node-sharded", "Go, Redis Cluster", "Node, Redis Cluster", "Go / Node")
