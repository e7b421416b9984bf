"""The client side of the control socket, for vigilctl and the sysvinit names: connect,
send one line, read one line of JSON. Nothing else on this path.

vigilctl runs often (scripts, status bars, `poweroff` on a slow machine), so this module
imports only C modules: _socket instead of socket (which imports enum, selectors and more)
and the JSON scanner of _json, the one json.loads itself uses (vigil.jsonc), instead of
json (whose decoder imports re). Together that was most of what a vigilctl run did before
it spoke.
"""

import _socket

from vigil.jsonc import loads
from vigil.protocol import format_request


def request(path: str, verb: str, args: list[str], timeout: float = 30.0) -> dict:
    """Send one request, return the decoded reply. OSError if vigil cannot be reached,
    ValueError if the reply is not JSON."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
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
