#!/usr/bin/python3
"""Publishes N room-targeted emits through python-socketio's write-only
RedisManager (Debian's 5.7.2), the way a Celery worker does.

    /usr/bin/python3 emit.py N CHANNEL [REDIS_URL]
"""
import json
import sys
import time

import socketio

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
channel = sys.argv[2] if len(sys.argv) > 2 else "bench"
url = sys.argv[3] if len(sys.argv) > 3 else "redis://127.0.0.1:6379/0"
m = socketio.RedisManager(url, channel=channel, write_only=True)
start = time.perf_counter()
for i in range(n):
    m.emit("tick", {"n": i}, room="bench")
s = time.perf_counter() - start
print(json.dumps({"contender": "python-redismanager", "n": n, "seconds": s, "msgs_per_s": n / s}))
