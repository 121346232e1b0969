# Sourced by bench/run-cluster.sh and bench/run-sharded.sh from the
# repository root: what the cluster fan-out harnesses share. CLIENTS
# (default 3000), REDIS_URL (default redis://127.0.0.1:6379); builds the
# load generator and examples/bench; three nodes on ports 3101-3103 (urls),
# a Redis key of the run's own (key); the node pids in pids.
clients=${CLIENTS:-3000}
redis=${REDIS_URL:-redis://127.0.0.1:6379}
key=siobridge-bench-$$ # a key of its own: other clusters on this Redis never see the traffic
ports="3101 3102 3103"
urls=ws://127.0.0.1:3101,ws://127.0.0.1:3102,ws://127.0.0.1:3103
go build -o /tmp/siobridge-loadgen ./bench/loadgen
go build -o /tmp/siobridge-benchserver ./examples/bench
export NODE_PATH=$PWD/compat_test/node/node_modules REDIS_URL=$redis

pids=()
listening() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
wait_port() { for _ in $(seq 150); do listening "$1" && return; sleep 0.1; done; echo "port $1 not up" >&2; exit 1; }
stop() { kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=(); sleep 1; }
