"""The client side of the control socket, for vigilctl and the sysvinit names: connect,
send one line, read one line of JSON. Nothing else on this path.

vigilctl runs often (scripts, status bars, `poweroff` on a slow machine), so this module
imports only C modules: _socket instead of socket (which imports enum, selectors and more)
and the JSON scanner of _json, the one json.loads itself uses (vigil.jsonc), instead of
json (whose decoder imports re). Together that was most of what a vigilctl run did before
it spoke.
"""

import _socket
import _struct

from vigil.jsonc import loads
from vigil.protocol import format_request


def request(path: str, verb: str, args: list[str], timeout: float = 30.0) -> dict:
    """Send one request, return the decoded reply. OSError if vigil cannot be reached,
    ValueError if the reply is not JSON."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        # A blocking connect waits for room when vigil's listen backlog is full (a flood
        # of other clients), for at most SO_SNDTIMEO; with a Python timeout set it would
        # fail at once with EAGAIN.
        whole, part = divmod(timeout, 1)
        s.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDTIMEO,
                     _struct.pack("ll", int(whole), int(part * 1e6)))
        s.connect(path)
        s.settimeout(timeout)
        s.sendall(format_request(verb, args))
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                break
    finally:
        s.close()
    if not chunks:
        return {"ok": False, "error": "no reply", "code": 1}
    return loads(b"".join(chunks).decode("utf-8", "replace"))
