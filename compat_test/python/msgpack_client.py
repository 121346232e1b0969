#!/usr/bin/python3
"""The newest python-socketio client (vendored) with serializer='msgpack',
driven through stdin, for the msgpack parser's compat test.

    msgpack_client.py --url http://127.0.0.1:5000 --transport polling|websocket
    msgpack_client.py --check    (exits 0 when its imports work)

Connects to / and /chat with auth {"token": "t"}. Commands, one JSON object
per stdin line: {"call": EVENT, "ns": NS, "args": [...]} (emit waiting for
the ack) and {"emit": EVENT, "ns": NS, "args": [...]}. Output lines:
{"type": "connected"|"disconnected", "namespace": NS},
{"type": "event", "event": ..., "args": [...], "namespace": NS},
{"type": "ack", "event": ..., "args": [...]} or {"type": "ack", "event": ...,
"error": ...}. Bytes are {"$binary": base64}. The server event "question" is
acknowledged with ("answer", b"\\x09").
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))

import msgpack  # noqa: E402,F401  (Debian's python3-msgpack)
import socketio  # noqa: E402

from peerio import native, out, plain  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--url")
p.add_argument("--transport", default="polling")
p.add_argument("--check", action="store_true")
a = p.parse_args()
if a.check:
    import websocket  # noqa: F401  (Debian's python3-websocket: python-engineio's WebSocket client)
    assert os.sep + "vendor" + os.sep in socketio.__file__
    sys.exit(0)

namespaces = ["/", "/chat"]
sio = socketio.Client(reconnection=False, serializer="msgpack")

for ns in namespaces:
    def make(ns):
        sio.on("connect", lambda: out({"type": "connected", "namespace": ns}), namespace=ns)
        sio.on("disconnect", lambda *reason: out({"type": "disconnected", "namespace": ns}), namespace=ns)

        def question(*args):
            out({"type": "event", "event": "question", "args": plain(list(args)), "namespace": ns})
            return ("answer", b"\x09")
        sio.on("question", question, namespace=ns)

        def any_event(event, *args):
            out({"type": "event", "event": event, "args": plain(list(args)), "namespace": ns})
        sio.on("*", any_event, namespace=ns)
    make(ns)

sio.connect(a.url, namespaces=namespaces, transports=[a.transport], auth={"token": "t"}, wait_timeout=10)

for line in sys.stdin:
    cmd = json.loads(line)
    ns = cmd.get("ns", "/")
    args = tuple(native(cmd.get("args", [])))
    if "call" in cmd:
        try:
            r = sio.call(cmd["call"], args, namespace=ns, timeout=5)
            if not isinstance(r, tuple):
                r = () if r is None else (r,)
            out({"type": "ack", "event": cmd["call"], "args": plain(list(r))})
        except Exception as e:  # the test shows it
            out({"type": "ack", "event": cmd["call"], "error": repr(e)})
    else:
        sio.emit(cmd["emit"], args, namespace=ns)
sio.disconnect()
