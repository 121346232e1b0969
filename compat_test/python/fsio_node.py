#!/usr/bin/python3
"""A Flask-SocketIO server as one node of a mixed cluster, driven by the Go
compat tests through stdin.

    fsio_node.py --port 5000 --mq redis://127.0.0.1:6379/0 --channel NAME [--head]

Without --head it runs Debian's Flask-SocketIO 5.3.2 / python-socketio 5.7.2
(pickle on the queue); with --head the newest Flask-SocketIO /
python-socketio / python-engineio vendored in vendor/ (JSON on the queue).
Clients of / and /chat join the rooms named by their `room` query
parameter (comma separated) on connect.

Every stdin line is one JSON command {"id": N, "op": ..., ...}; each is
performed on its own thread and answered with {"type": "done", "id": N,
...} on stdout (or {"type": "error", "id": N, "error": ...}):

    {"op": "emit", "event": E, "args": [...], "to": ROOM?, "skip_sid": SID?, "namespace": NS?}
    {"op": "emit_cb", "event": E, "args": [...], "to": SID}   -> done when the callback ran, with "args"
    {"op": "call", "event": E, "args": [...], "to": SID}      -> done with "result"
    {"op": "enter_room" | "leave_room", "sid": SID, "room": R}
    {"op": "close_room", "room": R}
    {"op": "disconnect", "sid": SID}

Arguments {"$binary": base64} are bytes, and bytes are reported so.
Prints {"type": "ready", "vendored": BOOL} once the server is listening.
"""
import argparse
import json
import logging
import os
import sys
import threading

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--mq", required=True)
p.add_argument("--channel", required=True)
p.add_argument("--head", action="store_true")
a = p.parse_args()

if a.head:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))
    import wsproto  # noqa: F401,E402  (simple-websocket's dependency: Debian's python3-wsproto)

from flask import Flask, request  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402
import socketio as socketio_pkg  # noqa: E402

from peerio import data_of, out, plain  # noqa: E402

logging.basicConfig(level=logging.WARNING)
app = Flask(__name__)
sio = SocketIO(app, message_queue=a.mq, channel=a.channel, async_mode="threading",
               logger=False, engineio_logger=False)


def connect():
    for room in request.args.get("room", "").split(","):
        if room:
            join_room(room)


for namespace in ("/", "/chat"):
    sio.on_event("connect", connect, namespace=namespace)


def perform(cmd):
    ident, kind = cmd.get("id"), cmd["op"]
    ns = cmd.get("namespace", "/")
    try:
        res = {"type": "done", "id": ident}
        if kind == "emit":
            sio.emit(cmd["event"], data_of(cmd), to=cmd.get("to"), skip_sid=cmd.get("skip_sid"), namespace=ns)
        elif kind == "emit_cb":
            got = threading.Event()

            def callback(*args):
                res["args"] = plain(list(args))
                got.set()
            sio.emit(cmd["event"], data_of(cmd), to=cmd["to"], namespace=ns, callback=callback)
            if not got.wait(cmd.get("timeout", 10)):
                raise TimeoutError("callback not invoked")
        elif kind == "call":
            res["result"] = plain(sio.call(cmd["event"], data_of(cmd), to=cmd["to"], namespace=ns,
                                           timeout=cmd.get("timeout", 10)))
        elif kind == "enter_room":
            sio.server.enter_room(cmd["sid"], cmd["room"], namespace=ns)
        elif kind == "leave_room":
            sio.server.leave_room(cmd["sid"], cmd["room"], namespace=ns)
        elif kind == "close_room":
            sio.close_room(cmd["room"], namespace=ns)
        elif kind == "disconnect":
            sio.server.disconnect(cmd["sid"], namespace=ns)
        else:
            raise ValueError("unknown op " + kind)
        out(res)
    except Exception as e:  # reported to the test, which fails on it
        out({"type": "error", "id": ident, "error": "%s: %s" % (type(e).__name__, e)})


def commands():
    for line in sys.stdin:
        line = line.strip()
        if line:
            threading.Thread(target=perform, args=(json.loads(line),), daemon=True).start()
    os._exit(0)  # the test closed stdin: stop


threading.Thread(target=commands, daemon=True).start()
out({"type": "ready", "vendored": os.sep + "vendor" + os.sep in socketio_pkg.__file__})
sio.run(app, host="127.0.0.1", port=a.port, allow_unsafe_werkzeug=True, log_output=False)
