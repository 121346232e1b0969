#!/usr/bin/python3
"""Emitter benchmark driver: the same N room-targeted emits through each
contender, against the same Redis, in one run; every PUBLISH is counted by
Redis itself (INFO commandstats), wall time by this driver.

    bench/run-emitter.sh [-n 200000] [-rounds 3]

Prints a markdown table (medians over the rounds, and ratios computed
within each round, then their median).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
p = argparse.ArgumentParser()
p.add_argument("-n", type=int, default=200000)
p.add_argument("-rounds", type=int, default=3)
p.add_argument("-emitbench", default="/tmp/siobridge-emitbench")
a = p.parse_args()


def publishes():
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "info", "commandstats"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("cmdstat_publish:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


# a payload of the size of one node emit, for the redis-benchmark ceiling
PAYLOAD = "x" * 46
CONTENDERS = {
    "redis-benchmark PUBLISH -P 64 (ceiling)": ["redis-benchmark", "-h", "127.0.0.1", "-p", "6379", "-n", str(a.n),
                                                 "-P", "64", "-c", "50", "-q", "PUBLISH", "bench#/#bench#", PAYLOAD],
    "siobridge Go emitter, node dialect": [a.emitbench, "-n", str(a.n), "-dialect", "node", "-concurrency", "128"],
    "siobridge Go emitter, python dialect": [a.emitbench, "-n", str(a.n), "-dialect", "python", "-concurrency", "128"],
    "siobridge Go emitter.Batch (256 per publish), node dialect": [a.emitbench, "-n", str(a.n), "-dialect", "node", "-concurrency", "4", "-batch", "256"],
    "siobridge Go emitter.Batch (256 per publish), python dialect": [a.emitbench, "-n", str(a.n), "-dialect", "python", "-concurrency", "4", "-batch", "256"],
    "@socket.io/redis-emitter 5.1.0 (Node 20)": ["node", os.path.join(ROOT, "bench/node/emit.js"), str(a.n), "bench"],
    "python-socketio 5.7.2 RedisManager(write_only=True)": ["/usr/bin/python3", os.path.join(ROOT, "bench/python/emit.py"), str(a.n), "bench"],
}
NODE = "@socket.io/redis-emitter 5.1.0 (Node 20)"
PYTHON = "python-socketio 5.7.2 RedisManager(write_only=True)"
env = dict(os.environ, NODE_PATH=os.path.join(ROOT, "compat_test/node/node_modules"))

rates = {k: [] for k in CONTENDERS}
ratios = {k: {"ceiling": [], "node": [], "python": []} for k in CONTENDERS}
for r in range(a.rounds):
    round_rates = {}
    for name, cmd in CONTENDERS.items():
        before = publishes()
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        wall = time.perf_counter() - t0
        counted = publishes() - before
        if counted < a.n:
            sys.exit(f"{name}: Redis counted {counted} publishes, want {a.n}")
        round_rates[name] = counted / wall
        print(f"round {r + 1}: {name}: {counted} publishes in {wall:.2f}s = {counted / wall:,.0f}/s", file=sys.stderr)
    names = list(CONTENDERS)
    for k in CONTENDERS:
        rates[k].append(round_rates[k])
        ratios[k]["ceiling"].append(round_rates[k] / round_rates[names[0]])
        ratios[k]["node"].append(round_rates[k] / round_rates[NODE])
        ratios[k]["python"].append(round_rates[k] / round_rates[PYTHON])

print(f"| contender ({a.n:,} emits, {a.rounds} rounds, medians) | publishes/s counted by Redis | vs ceiling | vs Node emitter | vs Python emitter |")
print("|---|---:|---:|---:|---:|")
for k in CONTENDERS:
    m = statistics.median
    print(f"| {k} | {m(rates[k]):,.0f} | {m(ratios[k]['ceiling']):.0%} | {m(ratios[k]['node']):.2f}× | {m(ratios[k]['python']):.1f}× |")
