"""Body limits on the real server: one rule for Content-Length and chunked bodies, answered as
JSON, exactly the limit accepted, no "100 Continue" for a body that will be refused, and the
Content-Length + Transfer-Encoding pair (request smuggling) refused with the connection closed."""

import json
import socket

import pytest

from conftest import API_KEY

LIMIT = 2048
HEAD = (b"POST /api/v1/outlet HTTP/1.1\r\nHost: meter\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + API_KEY.encode() + b"\r\n")


def exchange(port: int, request: bytes) -> tuple[int, dict | None, bool]:
    """(status, JSON body or None, whether the server closed the connection afterwards)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += sock.recv(65536)
        sock.settimeout(1)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
    status = int(head.split(b" ")[1])
    return status, json.loads(body[:length]) if body else None, closed


def chunked(payload: bytes) -> bytes:
    return b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"


def body_of(size: int) -> bytes:
    return b" " * (size - 2) + b"{}"  # valid JSON: the outlet then answers 400 "key is required"


@pytest.fixture
def port(meter_process):
    return meter_process(METER_MAX_BODY_BYTES=LIMIT).port


def test_exactly_the_limit_is_accepted_one_byte_more_is_a_json_413(port):
    at_limit = exchange(port, HEAD + b"Content-Length: %d\r\n\r\n" % LIMIT + body_of(LIMIT))
    assert at_limit[:2] == (400, {"error": "key is required", "status": 400})  # read by the app: accepted
    over = exchange(port, HEAD + b"Content-Length: %d\r\n\r\n" % (LIMIT + 1) + body_of(LIMIT + 1))
    assert over[:2] == (413, {"error": f"request body too large (limit {LIMIT} bytes)", "status": 413})


def test_chunked_bodies_are_counted_the_same_way(port):
    assert exchange(port, HEAD + chunked(body_of(LIMIT)))[:2] == (400, {"error": "key is required", "status": 400})
    status, body, _ = exchange(port, HEAD + chunked(body_of(LIMIT + 1)))
    assert status == 413 and body["status"] == 413 and "too large" in body["error"]


def test_an_oversize_body_gets_413_not_an_invitation_to_send_it(port):
    status, body, closed = exchange(port, HEAD + b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (LIMIT + 100))
    assert status == 413 and body["error"] == f"request body too large (limit {LIMIT} bytes)" and closed


def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(port):
    status, body, closed = exchange(port, HEAD + b"Content-Length: 5\r\n" + chunked(b'{"k":1}'))
    assert status == 400 and body == {"error": "a request must not carry both Content-Length and Transfer-Encoding", "status": 400}
    assert closed
