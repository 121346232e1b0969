#!/usr/bin/python3
"""Capture golden queue messages from the real python-socketio.

Run with Debian's python3 (python3-socketio 5.7.2, python3-flask-socketio
5.3.2, python3-redis) against a Redis on 127.0.0.1:6379:

    /usr/bin/python3 scripts/gen-python-golden.py > dialect/python/testdata/pickle-5.7.2.json

Every message is published by the library itself (a write-only
RedisManager or a write-only Flask-SocketIO) on a scratch channel while this
script SUBSCRIBEs to that channel, so the recorded bytes are exactly what
went over Redis. Each record names the call that produced it.
"""
import json
import sys
import threading
import time
import uuid

import redis
import socketio

HOST_ID = "0123456789abcdef0123456789abcdef"
channel = "siobridge-golden-" + uuid.uuid4().hex

r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
ps = r.pubsub(ignore_subscribe_messages=True)
ps.subscribe(channel)
while ps.get_message(timeout=1) is None and not ps.subscribed:
    pass

mgr = socketio.RedisManager("redis://127.0.0.1:6379/0", channel=channel, write_only=True)
mgr.host_id = HOST_ID

# A Flask-SocketIO write-only emitter, the "Celery worker" of its docs.
from flask_socketio import SocketIO  # noqa: E402

fsio = SocketIO(message_queue="redis://127.0.0.1:6379/0", channel=channel)
fsio.server.manager.host_id = HOST_ID

calls = [
    ("emit dict to room", lambda: mgr.emit("my event", {"data": 42}, namespace="/test", room="r1")),
    ("emit multi-arg bytes to room list with skip_sid", lambda: mgr.emit(
        "multi", ("a", 1, b"\x00\xff"), namespace="/test", room=["r1", "r2"], skip_sid="SKIPSID")),
    ("emit no data", lambda: mgr.emit("nodata", None, namespace="/")),
    ("emit list arg", lambda: mgr.emit("listarg", [1, "two"], namespace="/")),
    ("emit unicode floats bools", lambda: mgr.emit("uni", {"u": "é😀", "f": 1.5, "t": True, "n": None})),
    ("emit big ints", lambda: mgr.emit("big", (2 ** 70, -(2 ** 64), 255, 65536, -1))),
    ("emit nested bytes and bytearray", lambda: mgr.emit(
        "bin", {"img": b"\x89PNG", "more": [bytearray(b"ab")], "deep": {"x": [[b"\x01"]]}})),
    ("emit skip_sid list", lambda: mgr.emit("skip", "x", skip_sid=["s1", "s2"])),
    ("emit with callback triple", lambda: mgr._publish({
        "method": "emit", "event": "q", "data": {"n": 1}, "namespace": "/", "room": "SID1",
        "skip_sid": None, "callback": ("SID1", "/", 1), "host_id": HOST_ID})),
    ("callback", lambda: mgr._publish({
        "method": "callback", "host_id": HOST_ID, "sid": "SID1", "namespace": "/", "id": 1, "args": ("pong", 2)})),
    ("disconnect", lambda: mgr.disconnect("SID1", namespace="/test")),
    ("close_room", lambda: mgr.close_room("r1", namespace="/test")),
    ("flask-socketio emit", lambda: fsio.emit("news", {"n": 1}, to="room1", namespace="/chat")),
    ("flask-socketio send json", lambda: fsio.send({"j": 1}, json=True, to="room1")),
    ("flask-socketio send", lambda: fsio.send("hello", to="room1")),
    ("flask-socketio close_room", lambda: fsio.close_room("room1", namespace="/chat")),
]

records = []
for name, fn in calls:
    fn()
    deadline = time.time() + 5
    msg = None
    while time.time() < deadline:
        msg = ps.get_message(timeout=0.5)
        if msg and msg["type"] == "message":
            break
    if not msg:
        sys.exit("no message captured for " + name)
    records.append({"name": name, "hex": msg["data"].hex()})

json.dump({"source": "python-socketio 5.7.2 / Flask-SocketIO 5.3.2 (Debian bookworm), captured from Redis",
           "host_id": HOST_ID, "messages": records}, sys.stdout, indent=1)
sys.stdout.write("\n")
