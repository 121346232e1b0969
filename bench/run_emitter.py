#!/usr/bin/python3
"""Emitter benchmark driver (bench/run-emitter.sh): the same N room emits
(node dialect: event "tick", args [{"n": i}], room "bench") through each
contender, side by side in one run, in rounds whose order rotates:

  - redis-benchmark -P 64 PUBLISH of a payload of the same size (the ceiling)
  - sioemit --batch FILE
  - emitter.Batch from Go (bench/emitbench): Emit with a map per emit,
    Emit with a struct per emit, and EmitJSON with the arguments as JSON
    text
  - @socket.io/redis-emitter (Node)
  - python-socketio's RedisManager(write_only=True)

Every run gets its own redis-server (unless -url is given), so Redis's
INFO commandstats counts only the contenders' PUBLISH commands: a run
passes only when Redis executed exactly N of them. Wall time is measured
by this driver, process start to end (start-up included for everyone).
Prints each round's rates and ratios, then the medians.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
p = argparse.ArgumentParser()
p.add_argument("-n", type=int, default=200000, help="emits per contender and round")
p.add_argument("-rounds", type=int, default=3)
p.add_argument("-url", default="", help="use this Redis instead of a private redis-server (counts may then include other clients' publishes)")
p.add_argument("-bin", required=True, help="directory with the built sioemit and emitbench")
a = p.parse_args()

TARGETS = {"ceiling": 0.70, "node": 8.0, "python": 40.0}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


redis_proc = None
if a.url:
    url = a.url
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
else:
    host, port = "127.0.0.1", str(free_port())
    redis_proc = subprocess.Popen(["redis-server", "--bind", host, "--port", port, "--save", "", "--appendonly", "no"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://{host}:{port}/0"
    for _ in range(100):
        if subprocess.run(["redis-cli", "-h", host, "-p", port, "ping"], capture_output=True, text=True).stdout.strip() == "PONG":
            break
        time.sleep(0.05)
    else:
        sys.exit("private redis-server did not start")


def publishes():
    out = subprocess.run(["redis-cli", "-h", host, "-p", port, "info", "commandstats"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("cmdstat_publish:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


tmp = tempfile.mkdtemp(prefix="siobridge-emitbench-")
batch = os.path.join(tmp, "batch.jsonl")
with open(batch, "w") as f:
    for i in range(a.n):
        f.write('{"event":"tick","args":[{"n":%d}],"to":["bench"]}\n' % i)
sioemit = os.path.join(a.bin, "sioemit")
emitbench = os.path.join(a.bin, "emitbench")

# the ceiling publishes payloads of the mean size of these emits
dry = subprocess.run([sioemit, "--dry-run", "--dialect", "node", "--channel", "bench", "--batch", batch],
                     capture_output=True, text=True, check=True).stdout
sizes = [len(line.split("\t", 1)[1]) // 2 for line in dry.splitlines() if "\t" in line]
channel = dry.split("\t", 1)[0]
payload = "x" * round(sum(sizes) / len(sizes))

env = dict(os.environ, NODE_PATH=os.path.join(ROOT, "compat_test/node/node_modules"), REDIS_URL=url)
node_version = subprocess.run(["node", "-e", "console.log(require('@socket.io/redis-emitter/package.json').version + ' (Node ' + process.version + ')')"],
                              capture_output=True, text=True, env=env).stdout.strip() or "?"
py_version = subprocess.run(["/usr/bin/python3", "-c", "import importlib.metadata as m; print(m.version('python-socketio'))"],
                            capture_output=True, text=True).stdout.strip() or "?"

CEIL, SIOEMIT, BATCH, BATCHSTRUCT, BATCHJSON = "ceiling", "sioemit", "batch", "batchstruct", "batchjson"
NODE, PYTHON = "node", "python"
CONTENDERS = {
    CEIL: (f"redis-benchmark -P 64 -c 50 PUBLISH, {len(payload)}-byte payload (ceiling)",
           ["redis-benchmark", "-h", host, "-p", port, "-n", str(a.n), "-P", "64", "-c", "50", "-q", "PUBLISH", channel, payload]),
    SIOEMIT: ("sioemit --batch FILE (node dialect)",
              [sioemit, "--url", url, "--dialect", "node", "--channel", "bench", "--batch", batch]),
    BATCH: ("emitter.Batch.Emit from Go (4 goroutines, 256 emits per Publish, a map per emit)",
            [emitbench, "-url", url, "-n", str(a.n), "-dialect", "node", "-concurrency", "4", "-batch", "256"]),
    BATCHSTRUCT: ("emitter.Batch.Emit from Go (the same, a struct per emit)",
                  [emitbench, "-url", url, "-n", str(a.n), "-dialect", "node", "-concurrency", "4", "-batch", "256", "-struct"]),
    BATCHJSON: ("emitter.Batch.EmitJSON from Go (the same, arguments as JSON text)",
                [emitbench, "-url", url, "-n", str(a.n), "-dialect", "node", "-concurrency", "4", "-batch", "256", "-json"]),
    NODE: (f"@socket.io/redis-emitter {node_version}", ["node", os.path.join(ROOT, "bench/node/emit.js"), str(a.n), "bench"]),
    PYTHON: (f"python-socketio {py_version} RedisManager(write_only=True)",
             ["/usr/bin/python3", os.path.join(ROOT, "bench/python/emit.py"), str(a.n), "bench", url]),
}

print(f"{a.n:,} room emits per contender, {a.rounds} rounds, Redis at {url}, ceiling payload {len(payload)} bytes on {channel}")
rates = {k: [] for k in CONTENDERS}
GO = (SIOEMIT, BATCH, BATCHSTRUCT, BATCHJSON)
ratios = {(who, vs): [] for who in GO for vs in TARGETS}
try:
    for r in range(a.rounds):
        names = list(CONTENDERS)
        order = names[r % len(names):] + names[:r % len(names)]
        rr = {}
        for k in order:
            label, cmd = CONTENDERS[k]
            before = publishes()
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t0
            counted = publishes() - before
            if res.returncode != 0:
                sys.exit(f"{label}: exit {res.returncode}\n{res.stdout}\n{res.stderr}")
            # redis-benchmark sends whole pipelines of 64: it may publish a
            # few more than N, and its rate counts them all
            if counted < a.n or counted > a.n and not (k == CEIL or a.url):
                sys.exit(f"{label}: Redis executed {counted} PUBLISH commands, want {a.n}")
            rr[k] = (counted if k == CEIL else a.n) / wall
            rates[k].append(rr[k])
        print(f"\nround {r + 1} (order: {', '.join(order)})")
        for k in CONTENDERS:
            print(f"  {CONTENDERS[k][0]:<62} {rr[k]:>12,.0f} publishes/s")
        for who in GO:
            parts = []
            for vs, target in TARGETS.items():
                x = rr[who] / rr[{"ceiling": CEIL, "node": NODE, "python": PYTHON}[vs]]
                ratios[(who, vs)].append(x)
                parts.append(f"/{vs} {x:.2f} ({'met' if x >= target else 'MISSED'} >= {target:g})")
            print(f"  {who + ':':<13}" + "  ".join(parts))
finally:
    if redis_proc:
        redis_proc.terminate()
        redis_proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)

m = statistics.median
print(f"\n| contender ({a.n:,} room emits, {a.rounds} rounds, medians) | publishes/s (Redis counted every one) |")
print("|---|---:|")
for k, (label, _) in CONTENDERS.items():
    print(f"| {label} | {m(rates[k]):,.0f} |")
print("\n| ratio (median of the per-round ratios) | vs ceiling (target >= 0.70) | vs Node emitter (>= 8) | vs python-socketio (>= 40) |")
print("|---|---:|---:|---:|")
for who, label in ((SIOEMIT, "sioemit --batch"), (BATCH, "emitter.Batch.Emit, a map per emit"), (BATCHSTRUCT, "emitter.Batch.Emit, a struct per emit"), (BATCHJSON, "emitter.Batch.EmitJSON")):
    cells = [f"{m(ratios[(who, vs)]):.2f} {'met' if m(ratios[(who, vs)]) >= t else 'MISSED'}" for vs, t in TARGETS.items()]
    print(f"| {label} | " + " | ".join(cells) + " |")
