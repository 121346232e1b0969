"""JSON-lines input and output shared by the compat tests' python peers:
bytes are {"$binary": base64}."""
import base64
import json
import sys
import threading

_lock = threading.Lock()


def out(obj):
    """Write obj as one JSON line on stdout (thread-safe)."""
    with _lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def plain(v):
    """v with bytes replaced by {"$binary": base64} and tuples by lists."""
    if isinstance(v, (bytes, bytearray)):
        return {"$binary": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def native(v):
    """The inverse of plain: {"$binary": base64} back to bytes."""
    if isinstance(v, dict):
        if set(v) == {"$binary"}:
            return base64.b64decode(v["$binary"])
        return {k: native(x) for k, x in v.items()}
    if isinstance(v, list):
        return [native(x) for x in v]
    return v


def data_of(cmd):
    """The data argument of python-socketio for cmd["args"]: one value, or
    a tuple of several."""
    args = native(cmd.get("args", []))
    if len(args) == 1:
        return args[0]
    return tuple(args)
