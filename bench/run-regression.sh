#!/usr/bin/env bash
# Fan-out and memory of the Go server at an earlier commit vs the working
# tree, alternating in one run (the machine is shared: compare within a round).
#   bench/run-regression.sh BASE_REV [ROUNDS]     e.g. bench/run-regression.sh 794e9d7 3
# Both servers are examples/bench; both are driven by the load generator of
# BASE_REV (newer load generators may ask for things older servers lack).
# Per round: MEM_CLIENTS (default 10000) idle clients -> RSS per connection,
# then CLIENTS (default 5000) clients at RATE (default 40) events/s for 10 s.
# Prints one JSON line per server, round and kind.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/run-regression.sh BASE_REV [ROUNDS]}
rounds=${2:-3}
mem_clients=${MEM_CLIENTS:-10000}; clients=${CLIENTS:-5000}; rate=${RATE:-40}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/base"
git archive "$base" | tar -x -C "$tmp/base"
(cd "$tmp/base" && go build -o "$tmp/server-base" ./examples/bench && go build -o "$tmp/loadgen" ./bench/loadgen)
go build -o "$tmp/server-new" ./examples/bench

start_server() { # binary -> pid in $pid
  "$1" -addr 127.0.0.1:3100 >/dev/null 2>&1 & pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/3100) 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; sleep 1; }

for r in $(seq "$rounds"); do
  for impl in base new; do
    start_server "$tmp/server-$impl"
    res=$("$tmp/loadgen" -url ws://127.0.0.1:3100 -clients "$mem_clients" -rate 1 -duration 1s -warmup 0 -pid $pid)
    echo "{\"server\":\"$impl\",\"base\":\"$base\",\"round\":$r,\"kind\":\"memory\",\"result\":$res}"
    stop_server
    start_server "$tmp/server-$impl"
    res=$("$tmp/loadgen" -url ws://127.0.0.1:3100 -clients "$clients" -rate "$rate" -duration 10s -pid $pid)
    echo "{\"server\":\"$impl\",\"base\":\"$base\",\"round\":$r,\"kind\":\"fanout\",\"rate\":$rate,\"result\":$res}"
    stop_server
  done
done
