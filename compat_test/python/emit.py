#!/usr/bin/python3
"""Publish a fixed set of messages with python-socketio's write-only
RedisManager (what a Celery worker does), for the reverse-decoding test.

    emit.py --url redis://127.0.0.1:6379/0 --channel NAME
    emit.py ... --skip SID --disconnect SID   (effects observed on clients)
"""
import argparse
import socketio

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--channel", required=True)
p.add_argument("--skip", help="a member of r1 that skip_sid leaves out")
p.add_argument("--disconnect", help="a socket of / to disconnect")
a = p.parse_args()
m = socketio.RedisManager(a.url, channel=a.channel, write_only=True)
m.host_id = "0123456789abcdef0123456789abcdef"
if a.skip:
    # each operation is followed by an emit that shows its effect on the
    # clients of the server that consumes the channel
    m.emit("one", {"big": 2 ** 80, "u": "é😀"}, room="r1", skip_sid=a.skip)
    m.close_room("r1", namespace="/")
    m.emit("after-close", 1, room="r1")
    m.disconnect(a.disconnect, namespace="/")
    m.emit("multi", ("a", 1, b"\x00\xff", {"k": [1.5, None, True]}), namespace="/chat", room=["r1", "r2"])
    m.emit("done", None)
    raise SystemExit(0)
m.emit("multi", ("a", 1, b"\x00\xff", {"k": [1.5, None, True]}), namespace="/chat", room=["r1", "r2"], skip_sid="SID9")
m.emit("one", {"big": 2 ** 80, "u": "é😀"}, room="r1")
m.close_room("r1", namespace="/chat")
m.disconnect("SID1", namespace="/")
m.emit("done", None)
