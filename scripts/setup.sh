#!/usr/bin/env bash
# Set-up for siobridge's tests on a Debian machine with Go: installs what is
# missing (brokers, Python peers, Chromium, Node peers) and starts the brokers
# on loopback. Services that already answer are reused. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # HOST PORT SECONDS NAME
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if port_open "$1" "$2"; then return 0; fi
    sleep 0.1
  done
  log "$4 did not start listening on $1:$2 within $3 s"; return 1
}

APT_UPDATED=0
apt_install() { # packages...
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ $APT_UPDATED = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# brokers (redis-tools brings redis-cli and redis-benchmark; rabbitmqctl comes with the server)
# and the Python peers of compat_test (Debian's Flask-SocketIO 5.3.2 / python-socketio 5.7.2;
# python3-msgpack and python3-websocket for the msgpack client of compat_test)
# and Chromium for the browser test of examples/chat
apt_install redis-server redis-tools rabbitmq-server nats-server \
  python3-flask-socketio python3-socketio python3-kombu python3-redis python3-requests python3-wsproto python3-msgpack python3-websocket \
  chromium
command -v node >/dev/null || apt_install nodejs npm

# Redis on 127.0.0.1:6379
if ! port_open 127.0.0.1 6379; then
  log "starting redis-server"
  mkdir -p /tmp/siobridge-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/siobridge-redis --logfile /tmp/siobridge-redis/redis.log
  wait_port 127.0.0.1 6379 20 redis
fi

# NATS (with JetStream) on 127.0.0.1:4222
if ! port_open 127.0.0.1 4222; then
  log "starting nats-server"
  mkdir -p /tmp/siobridge-nats
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/siobridge-nats >/tmp/siobridge-nats/nats.log 2>&1 &
  wait_port 127.0.0.1 4222 20 nats
fi

# RabbitMQ on 127.0.0.1:5672 (guest/guest)
if ! port_open 127.0.0.1 5672; then
  log "starting rabbitmq-server"
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 $SUDO rabbitmq-server -detached || true
  wait_port 127.0.0.1 5672 120 rabbitmq
fi

# Node packages (never committed: installed from the lock files): the peers
# of compat_test, and the browser side of examples/chat.
for dir in compat_test/node examples/chat; do
  [ -f "$dir/package-lock.json" ] || continue
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    log "npm ci ($dir)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
log "ready"
