#!/usr/bin/env bash
# Cluster benchmarks of issue #7, side by side in one run (docs/benchmarks.md).
#   bench/run-cluster.sh [ROUNDS] [RATES...]   default: 3 rounds, cluster rates 8 40 150 events/s
#   (ADAPTER_RATES, default 150 300: the rates of part 2; CLIENTS, DURATION)
# 1. Cluster fan-out: three Go nodes (examples/bench -url ... -dialect node)
#    vs three Node nodes (socket.io 4.8 + @socket.io/redis-adapter 8,
#    bench/node/sio-cluster-node.js) on the same Redis and key, one cluster
#    at a time, Go first in odd rounds and Node first in even ones. CLIENTS
#    (default 3000) clients spread round-robin over the three nodes, all in
#    room "bench"; the load generator publishes the ticks to the room through
#    Redis with the Go emitter (node dialect), the same publisher for both.
# 2. Adapter overhead: one Go node without adapter vs the same node with the
#    Redis adapter (node dialect); the broadcast is a client's "fanout"
#    event on the node, as in bench/run-server.sh. go-redis-detached is the
#    node with the adapter whose handler broadcasts on a goroutine of its own
#    (examples/bench -detach): Emit waits for Redis's reply to the PUBLISH,
#    and one client's events run one after the other.
# PARTS (default "cluster adapter") selects the parts.
# Prints one JSON line per cluster (or node), rate and round. Needs Redis
# (REDIS_URL, default redis://127.0.0.1:6379) and scripts/setup.sh (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; shift || true
rates=${*:-8 40 150}
adapter_rates=${ADAPTER_RATES:-150 300}
parts=${PARTS:-cluster adapter}
duration=${DURATION:-10s}
. bench/cluster-common.sh
start() { # impl ports... -> pids
  local impl=$1; shift
  for p in "$@"; do
    case $impl in
      go-cluster) /tmp/siobridge-benchserver -addr 127.0.0.1:$p -url "$redis" -dialect node -channel "$key" >/dev/null 2>&1 & ;;
      node-cluster) node bench/node/sio-cluster-node.js "$p" "$key" >/dev/null 2>&1 & ;;
      go-single) /tmp/siobridge-benchserver -addr 127.0.0.1:$p >/dev/null 2>&1 & ;;
      go-redis) /tmp/siobridge-benchserver -addr 127.0.0.1:$p -url "$redis" -dialect node -channel "$key" >/dev/null 2>&1 & ;;
      go-redis-detached) /tmp/siobridge-benchserver -addr 127.0.0.1:$p -url "$redis" -dialect node -channel "$key" -detach >/dev/null 2>&1 & ;;
    esac
    pids+=($!)
  done
  for p in "$@"; do wait_port "$p"; done
  sleep 0.5
}
trap '[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null' EXIT

for round in $(seq "$rounds"); do
  order="go-cluster node-cluster"; [ $((round % 2)) -eq 0 ] && order="node-cluster go-cluster"
  [[ " $parts " == *" cluster "* ]] || rates=""
  for rate in $rates; do
    for impl in $order; do
      start $impl $ports
      result=$(/tmp/siobridge-loadgen -url $urls -clients "$clients" -rate "$rate" -duration "$duration" \
        -publish "$redis" -dialect node -channel "$key")
      echo "{\"server\":\"$impl\",\"kind\":\"cluster\",\"round\":$round,\"rate\":$rate,\"result\":$result}"
      stop
    done
  done
  order="go-single go-redis go-redis-detached"; [ $((round % 2)) -eq 0 ] && order="go-redis-detached go-redis go-single"
  [[ " $parts " == *" adapter "* ]] || adapter_rates=""
  for rate in $adapter_rates; do
    for impl in $order; do
      start $impl 3101
      result=$(/tmp/siobridge-loadgen -url ws://127.0.0.1:3101 -clients "$clients" -rate "$rate" -duration "$duration" -pid "${pids[0]}")
      echo "{\"server\":\"$impl\",\"kind\":\"adapter\",\"round\":$round,\"rate\":$rate,\"result\":$result}"
      stop
    done
  done
done
