#!/usr/bin/env bash
# Fan-out benchmark: siobridge's server (examples/bench) vs Node socket.io 4.8
# (bench/node/sio-bench-server.js), same load generator (bench/loadgen), same run.
#   bench/run-server.sh [CLIENTS] [RATES...]    default: 5000 clients, rates 4 12 24 36 40 events/s
# First the memory run: MEM_CLIENTS (default 10000) idle clients per server,
# RSS delta / clients. Then, per rate, Go and Node alternately.
# Prints one JSON line per server and run. Needs scripts/setup.sh (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-5000}; shift || true
rates=${*:-4 12 24 36 40}
mem_clients=${MEM_CLIENTS:-10000}
go build -o /tmp/siobridge-loadgen ./bench/loadgen
go build -o /tmp/siobridge-benchserver ./examples/bench
export NODE_PATH=$PWD/compat_test/node/node_modules

start_server() { # impl -> pid in $pid
  if [ "$1" = go ]; then
    /tmp/siobridge-benchserver -addr 127.0.0.1:3100 >/dev/null 2>&1 & pid=$!
  else
    node bench/node/sio-bench-server.js 3100 >/dev/null 2>&1 & pid=$!
  fi
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/3100) 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; sleep 1; }

for impl in go node; do
  start_server $impl
  result=$(/tmp/siobridge-loadgen -url ws://127.0.0.1:3100 -clients "$mem_clients" -rate 1 -duration 1s -warmup 0 -pid $pid)
  echo "{\"server\":\"$impl\",\"kind\":\"memory\",\"result\":$result}"
  stop_server
done
for rate in $rates; do
  for impl in go node; do
    start_server $impl
    result=$(/tmp/siobridge-loadgen -url ws://127.0.0.1:3100 -clients "$clients" -rate "$rate" -duration 10s -pid $pid)
    echo "{\"server\":\"$impl\",\"kind\":\"fanout\",\"rate\":$rate,\"result\":$result}"
    stop_server
  done
done
