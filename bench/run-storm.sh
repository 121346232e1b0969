#!/usr/bin/env bash
# Connection-storm benchmark: siobridge's server (examples/bench) vs Node
# socket.io 4.8 (bench/node/sio-bench-server.js), same load generator
# (bench/loadgen -storm), same run, alternating.
#   bench/run-storm.sh [CLIENTS] [ROUNDS]    default: 18000 clients, 3 rounds
# TIMEOUT (default 30s) is the set-up time allowed to one client.
# Each round starts a fresh server of each kind and opens CLIENTS clients at
# once (CONCURRENCY, default 512, being set up at a time): WebSocket handshake,
# Socket.IO CONNECT, "join" acknowledged. Prints one JSON line per server and
# round. Needs scripts/setup.sh (npm ci). PROFILE=DIR writes a CPU profile of
# the Go server per round to DIR. NOFILE=N runs the servers with a descriptor
# limit of N (ulimit -n): clients beyond it are refused ("failed", and
# "settled_s" tells how soon).
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-18000}
rounds=${2:-3}
concurrency=${CONCURRENCY:-512}
# several source addresses: more ephemeral ports than one address has
local=${LOCAL_IPS:-127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5}
go build -o /tmp/siobridge-loadgen ./bench/loadgen
go build -o /tmp/siobridge-benchserver ./examples/bench
export NODE_PATH=$PWD/compat_test/node/node_modules

start_server() { # impl round -> pid in $pid
  if [ "$1" = go ]; then
    cmd=(/tmp/siobridge-benchserver -addr 127.0.0.1:3100)
    if [ -n "${PROFILE:-}" ]; then mkdir -p "$PROFILE"; cmd+=(-cpuprofile "$PROFILE/storm-go-$2.pprof"); fi
  else
    cmd=(node bench/node/sio-bench-server.js 3100)
  fi
  (if [ -n "${NOFILE:-}" ]; then ulimit -n "$NOFILE"; fi; exec "${cmd[@]}" >/dev/null 2>&1) & pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/3100) 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; sleep 1; }

for round in $(seq "$rounds"); do
  for impl in go node; do
    start_server $impl "$round"
    result=$(/tmp/siobridge-loadgen -url ws://127.0.0.1:3100 -storm -clients "$clients" \
      -concurrency "$concurrency" -local "$local" -timeout "${TIMEOUT:-30s}" -pid $pid)
    echo "{\"server\":\"$impl\",\"kind\":\"storm\",\"round\":$round,\"result\":$result}"
    stop_server
  done
done
