#!/usr/bin/env bash
# Sharded scale-out benchmark of issue #11, side by side in one run
# (docs/benchmarks.md). The room fan-out of bench/run-cluster.sh (same load
# generator, same method) on two brokers:
#   classic  three Go nodes (examples/bench -dialect node) vs three Node nodes
#            (socket.io 4.8 + @socket.io/redis-adapter createAdapter) on ONE
#            Redis (REDIS_URL, default redis://127.0.0.1:6379);
#   sharded  three Go nodes (examples/bench -dialect node-sharded, i.e.
#            server.WithAdapter(bus, nodesharded.New(...)) as sioserver
#            --dialect node-sharded) vs three Node nodes (createShardedAdapter,
#            subscriptionMode "dynamic") on a 3-master Redis Cluster of
#            private redis-server processes this script starts on free
#            loopback ports (redis-cli --cluster create) and stops on exit.
# The ticks are published to room "bench" by the load generator with the Go
# emitter in the cluster's dialect (node / node-sharded: SPUBLISH on the
# room's channel), the same publisher for Go and Node.
#   bench/run-sharded.sh [ROUNDS] [RATES...]   default: 3 rounds at 150 events/s
#   (CLIENTS default 3000, DURATION default 8s; KINDS default "classic sharded")
# One cluster at a time; Go first in odd rounds, Node first in even ones.
# Prints one JSON line per cluster, kind, rate and round
# (bench/summarize_cluster.py makes the tables). Needs redis-server and
# redis-cli >= 7 and scripts/setup.sh (npm ci in compat_test/node).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; shift || true
rates=${*:-150}
kinds=${KINDS:-classic sharded}
duration=${DURATION:-8s}
. bench/cluster-common.sh
redis_pids=()
tmp=$(mktemp -d)
cleanup() {
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  [ ${#redis_pids[@]} -eq 0 ] || kill "${redis_pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The Redis Cluster: three masters, no replicas, on the first free ports
# from 7300 (a node's cluster bus is its port + 10000).
cluster_addrs=()
start_cluster() {
  local p=7300
  while [ ${#cluster_addrs[@]} -lt 3 ]; do
    p=$((p + 1))
    [ $p -lt 7400 ] || { echo "no free port for the Redis Cluster" >&2; exit 1; }
    if listening $p || listening $((p + 10000)); then continue; fi
    mkdir -p "$tmp/$p"
    redis-server --bind 127.0.0.1 --port $p --cluster-enabled yes \
      --cluster-config-file "$tmp/$p/nodes.conf" --cluster-node-timeout 2000 \
      --save "" --appendonly no --dir "$tmp/$p" --logfile "$tmp/$p/log" &
    redis_pids+=($!)
    wait_port $p
    cluster_addrs+=(127.0.0.1:$p)
  done
  redis-cli --cluster create "${cluster_addrs[@]}" --cluster-replicas 0 --cluster-yes >"$tmp/create.log" 2>&1 ||
    { cat "$tmp/create.log" >&2; exit 1; }
  for a in "${cluster_addrs[@]}"; do
    for _ in $(seq 300); do
      redis-cli -h "${a%:*}" -p "${a#*:}" cluster info | grep -q '^cluster_state:ok' && continue 2
      sleep 0.1
    done
    echo "Redis Cluster node $a not ok" >&2; exit 1
  done
}
[[ " $kinds " == *" sharded "* ]] && start_cluster
cluster_list=$(IFS=,; echo "${cluster_addrs[*]}")

start() { # impl ports... -> pids
  local impl=$1; shift
  for p in "$@"; do
    case $impl in
      go-classic) /tmp/siobridge-benchserver -addr 127.0.0.1:$p -url "$redis" -dialect node -channel "$key" >"$tmp/$impl-$p.log" 2>&1 & ;;
      node-classic) node bench/node/sio-cluster-node.js "$p" "$key" >"$tmp/$impl-$p.log" 2>&1 & ;;
      go-sharded) /tmp/siobridge-benchserver -addr 127.0.0.1:$p -url "redis+cluster://$cluster_list" -dialect node-sharded -channel "$key" >"$tmp/$impl-$p.log" 2>&1 & ;;
      node-sharded) node bench/node/sio-cluster-node.js "$p" "$key" "$cluster_list" >"$tmp/$impl-$p.log" 2>&1 & ;;
    esac
    pids+=($!)
  done
  for p in "$@"; do wait_port "$p"; done
  sleep 0.5
}

for round in $(seq "$rounds"); do
  for kind in $kinds; do
    order="go-$kind node-$kind"; [ $((round % 2)) -eq 0 ] && order="node-$kind go-$kind"
    publish=$redis dialect=node
    [ "$kind" = sharded ] && publish="redis+cluster://$cluster_list" dialect=node-sharded
    for rate in $rates; do
      for impl in $order; do
        start "$impl" $ports
        result=$(/tmp/siobridge-loadgen -url $urls -clients "$clients" -rate "$rate" -duration "$duration" \
          -publish "$publish" -dialect "$dialect" -channel "$key")
        echo "{\"server\":\"$impl\",\"kind\":\"$kind\",\"round\":$round,\"rate\":$rate,\"result\":$result}"
        if [[ $result == *'"delivered":0,'* ]]; then # nothing arrived: show why
          for p in $ports; do echo "== $impl $p" >&2; tail -20 "$tmp/$impl-$p.log" >&2; done
        fi
        stop
      done
    done
  done
done
