#!/usr/bin/python3
"""A Flask-SocketIO server on a message queue, for the compat tests.

    fsio_server.py --port 5000 --mq redis://127.0.0.1:6379/0 [--channel NAME]

Clients join the room named by their `room` query parameter on connect
(and any room they ask for with a `join` event). Clients in the /chat
namespace do the same. Prints READY when listening.
"""
import argparse
import logging
import sys

from flask import Flask, request
from flask_socketio import SocketIO, join_room

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--mq", required=True)
p.add_argument("--channel", default=None)
a = p.parse_args()

logging.basicConfig(level=logging.WARNING)
app = Flask(__name__)
kwargs = {"message_queue": a.mq, "async_mode": "threading", "logger": False, "engineio_logger": False}
if a.channel:
    kwargs["channel"] = a.channel
socketio = SocketIO(app, **kwargs)


def on_connect_common():
    room = request.args.get("room")
    if room:
        join_room(room)


@socketio.on("connect")
def connect():
    on_connect_common()


@socketio.on("connect", namespace="/chat")
def connect_chat():
    on_connect_common()


@socketio.on("join")
def join(room):
    join_room(room)
    return "joined " + room


print("READY", flush=True)
socketio.run(app, host="127.0.0.1", port=a.port, allow_unsafe_werkzeug=True, log_output=False)
