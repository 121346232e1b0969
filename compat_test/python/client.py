#!/usr/bin/python3
"""A python-socketio client that reports everything as JSON lines.

    client.py --url http://127.0.0.1:5000 [--room r1] [--namespace /chat] --events a,b,c

Output lines: {"type": "connected", "sid": ..., "namespace": ...},
{"type": "event", "event": ..., "args": [...], "namespace": ...},
{"type": "disconnected", "namespace": ...}. Bytes are {"$binary": base64}.
The event "ask" is acknowledged with ("pong", *args).
"""
import argparse

import socketio

from peerio import out, plain

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--room", default="")
p.add_argument("--namespace", action="append", default=None)
p.add_argument("--events", default="")
a = p.parse_args()
namespaces = a.namespace or ["/"]

sio = socketio.Client(reconnection=False)

for ns in namespaces:
    def make(ns):
        @sio.on("connect", namespace=ns)
        def on_connect():
            out({"type": "connected", "sid": sio.get_sid(ns), "namespace": ns})

        @sio.on("disconnect", namespace=ns)
        def on_disconnect():
            out({"type": "disconnected", "namespace": ns})

        for ev in [e for e in a.events.split(",") if e]:
            def make_ev(ev):
                def handler(*args):
                    out({"type": "event", "event": ev, "args": plain(list(args)), "namespace": ns})
                    if ev == "ask":
                        return ("pong",) + tuple(args)
                sio.on(ev, handler, namespace=ns)
            make_ev(ev)
    make(ns)

url = a.url + ("?room=" + a.room if a.room else "")
sio.connect(url, namespaces=namespaces, transports=["polling"], wait_timeout=10)
sio.wait()
out({"type": "exit"})
