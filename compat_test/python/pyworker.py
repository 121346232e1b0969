#!/usr/bin/python3
"""python-socketio's write-only RedisManager (what a Celery worker uses),
driven by the compat tests through stdin.

    pyworker.py --url redis://127.0.0.1:6379/0 --channel NAME

Every stdin line is one JSON command, performed in order and answered with
{"type": "done", "id": N} on stdout:

    {"id": N, "op": "emit", "event": E, "args": [...], "room": R?, "skip_sid": S?, "namespace": NS?}
    {"id": N, "op": "close_room", "room": R, "namespace": NS?}
    {"id": N, "op": "disconnect", "sid": SID, "namespace": NS?}

Arguments {"$binary": base64} are bytes; several arguments are sent as a
tuple, as python-socketio does. Prints {"type": "ready"} first.
"""
import argparse
import json
import sys

import socketio

from peerio import data_of, out

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--channel", required=True)
a = p.parse_args()
m = socketio.RedisManager(a.url, channel=a.channel, write_only=True)


out({"type": "ready"})
for line in sys.stdin:
    if not line.strip():
        continue
    cmd = json.loads(line)
    ns = cmd.get("namespace", "/")
    if cmd["op"] == "emit":
        m.emit(cmd["event"], data_of(cmd), namespace=ns, room=cmd.get("room"), skip_sid=cmd.get("skip_sid"))
    elif cmd["op"] == "close_room":
        m.close_room(cmd["room"], namespace=ns)
    elif cmd["op"] == "disconnect":
        m.disconnect(cmd["sid"], namespace=ns)
    out({"type": "done", "id": cmd["id"]})
