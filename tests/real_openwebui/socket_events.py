"""A browser's socket.io connection to Open WebUI, as the web UI opens it: one JSON line per event.

Run with the Open WebUI virtualenv's python (it has python-socketio, the same version as the
server): ``<venv>/bin/python socket_events.py <open webui url> <token>``. The first line is
``{"sid": ...}``, the session id the web UI sends as ``session_id``; then every ``events`` event
Open WebUI emits to this user (``chat:completion`` chunks with the usage, ``done``, titles,
tags, follow-ups), one per line, until stdin closes.
"""

import json
import sys
import threading

import socketio


def main() -> None:
    url, token = sys.argv[1], sys.argv[2]
    lock = threading.Lock()

    def emit(obj) -> None:
        with lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    client = socketio.Client(reconnection=False)
    client.on("events", lambda data: emit({"event": data}))
    client.connect(url, socketio_path="/ws/socket.io", transports=["websocket"], auth={"token": token}, wait_timeout=60)
    client.call("user-join", {"auth": {"token": token}}, timeout=60)  # what the web UI sends after connecting
    emit({"sid": client.get_sid()})
    sys.stdin.read()  # until the test is done with us
    client.disconnect()


if __name__ == "__main__":
    main()
