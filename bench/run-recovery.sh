#!/usr/bin/env bash
# Recovery cost of issue #11, side by side in one run (docs/benchmarks.md):
# the time from a client's reconnect to the last of MISSED events it missed
# while away, Go vs Node, the same driver (socket.io-client 4.8.1,
# bench/node/recovery-driver.js):
#   go    bench/recoveryserver: server.WithConnectionStateRecovery (in memory,
#         one node, no broker; what sioserver --recovery runs);
#   node  bench/node/sio-recovery-server.js: socket.io 4.8.1 with
#         connectionStateRecovery on its default in-memory adapter.
# With ADAPTER=streams both are instead a node of a Redis Streams cluster
# on a private redis-server (recovery through the stream and sessions in
# Redis, what a client gets back on any node):
#   go    bench/recoveryserver -streams URL: the node-streams dialect with
#         its stream store (sioserver --dialect node-streams --recovery);
#   node  sio-recovery-server.js with @socket.io/redis-streams-adapter.
# Each server process gets its own stream (key), so one side never reads
# the other's entries.
#   bench/run-recovery.sh [ROUNDS]   default 5 rounds
#   (MISSED default 1000; WARMUP default 2 and CYCLES default 10 reconnects
#   per server process, the warm-up ones not reported)
# A fresh server process per round and side; Go first in odd rounds, Node
# first in even ones. Prints one JSON line per server and round
# (bench/summarize_recovery.py makes the table).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
missed=${MISSED:-1000}
warmup=${WARMUP:-2}
cycles=${CYCLES:-10}
adapter=${ADAPTER:-memory}
port=3201
go build -o /tmp/siobridge-recoveryserver ./bench/recoveryserver
export NODE_PATH=$PWD/compat_test/node/node_modules

pid= redis_pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null' EXIT
wait_port() { for _ in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 not up" >&2; exit 1; }
case $adapter in
  memory) ;;
  streams)
    redis_port=3291
    redis-server --bind 127.0.0.1 --port $redis_port --save "" --appendonly no >/dev/null 2>&1 &
    redis_pid=$!
    wait_port $redis_port
    redis_url=redis://127.0.0.1:$redis_port/0 ;;
  *) echo "ADAPTER is memory or streams" >&2; exit 2 ;;
esac

for round in $(seq "$rounds"); do
  order="go node"; [ $((round % 2)) -eq 0 ] && order="node go"
  for impl in $order; do
    case $impl in
      go) if [ "$adapter" = streams ]; then
            /tmp/siobridge-recoveryserver -addr 127.0.0.1:$port -recovery 2m -streams "$redis_url" -key "bench-$round-go" >/dev/null 2>&1 &
          else
            /tmp/siobridge-recoveryserver -addr 127.0.0.1:$port -recovery 2m >/dev/null 2>&1 &
          fi ;;
      node) if [ "$adapter" = streams ]; then
            node bench/node/sio-recovery-server.js $port 120000 "$redis_url" "bench-$round-node" >/dev/null 2>&1 &
          else
            node bench/node/sio-recovery-server.js $port 120000 >/dev/null 2>&1 &
          fi ;;
    esac
    pid=$!
    wait_port $port
    result=$(node bench/node/recovery-driver.js "http://127.0.0.1:$port" "$missed" "$warmup" "$cycles")
    echo "{\"server\":\"$impl\",\"adapter\":\"$adapter\",\"round\":$round,\"result\":$result}"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
