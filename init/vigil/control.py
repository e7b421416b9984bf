"""The control socket's server: a line-based protocol (vigil.protocol) where every request
gets exactly one reply.

Every socket is non-blocking and every connection has a deadline, so a client that
connects and stalls (or never reads its reply) costs one fd for a while and nothing else.
Verbs that change anything need the peer's uid (SO_PEERCRED) to be 0.
"""

from vigil import jsonc as json  # json.dumps and json.loads without re: vigil.jsonc
import os
import select
import socket
import struct
from collections.abc import Callable

from vigil.protocol import MAX_REQUEST, PROTOCOL, VERBS

MAX_CLIENTS = 64
CLIENT_DEADLINE = 10.0   # seconds from connect to the reply being sent


class RequestError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def parse_request(line: bytes) -> tuple[str, list[str]]:
    """Framing, pure: bytes of one line in, (verb, args) out, or RequestError."""
    if len(line) > MAX_REQUEST:
        raise RequestError(f"request longer than {MAX_REQUEST} bytes", 2)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("request is not UTF-8", 2) from None
    words = text.rstrip("\n").split()
    if len(words) < 2:
        raise RequestError("expected: VERSION VERB [ARG...]", 2)
    if words[0] != str(PROTOCOL):
        raise RequestError(f"unsupported protocol version {words[0][:16]!r} "
                           f"(this vigil speaks {PROTOCOL})", 2)
    return words[1], words[2:]


def check_request(verb: str, args: list[str], uid: int) -> None:
    """A known verb, the right number of arguments, and root for the verbs that need it."""
    if verb not in VERBS:
        raise RequestError(f"unknown verb {verb[:40]!r}", 2)
    fewest, most, root = VERBS[verb]
    if len(args) < fewest or (most is not None and len(args) > most):
        raise RequestError(f"{verb}: wrong number of arguments", 2)
    if root and uid != 0:
        raise RequestError(f"{verb}: permission denied (needs root)", 1)


def format_reply(ok: bool, result=None, error: str = "", code: int = 0) -> bytes:
    body = {"ok": True, "result": result} if ok else {"ok": False, "error": error,
                                                      "code": code or 1}
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


class Client:
    __slots__ = ("sock", "uid", "pid", "inbuf", "outbuf", "timer")


class ControlServer:
    def __init__(self, loop, path: str, handle: Callable[[str, list[str], int], object],
                 fd: int = -1):
        """handle(verb, args, uid) returns the result or raises RequestError.
        fd: a listening socket inherited across a re-exec, used instead of binding anew."""
        self.loop, self.path, self.handle = loop, path, handle
        self.clients: dict[int, Client] = {}
        if fd >= 0:
            self.sock = socket.socket(fileno=fd)
            self.sock.set_inheritable(False)
            self.sock.setblocking(False)
        else:
            os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
                                      | socket.SOCK_CLOEXEC)
            self.sock.bind(path)
            os.chmod(path, 0o666)  # reading is open to local users; SO_PEERCRED guards the rest
            self.sock.listen(64)
        loop.add(self.sock.fileno(), self._accept)

    def _accept(self, _mask: int) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and friends: try again on the next event
                return
            conn.setblocking(False)
            if len(self.clients) >= MAX_CLIENTS:
                try:
                    conn.send(format_reply(False, error="too many clients", code=1))
                except OSError:
                    pass
                conn.close()
                continue
            c = Client()
            c.sock, c.inbuf, c.outbuf = conn, b"", b""
            c.pid, c.uid, _gid = struct.unpack(
                "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            fd = conn.fileno()
            self.clients[fd] = c
            c.timer = self.loop.call_later(CLIENT_DEADLINE, lambda fd=fd: self._drop(fd))
            self.loop.add(fd, lambda mask, fd=fd: self._on_client(fd, mask))

    def _drop(self, fd: int) -> None:
        c = self.clients.pop(fd, None)
        if c is None:
            return
        c.timer.cancel()
        self.loop.remove(fd)
        c.sock.close()

    def _on_client(self, fd: int, mask: int) -> None:
        c = self.clients.get(fd)
        if c is None:
            return
        if mask & select.EPOLLOUT:
            self._flush(fd, c)
            return
        try:
            data = c.sock.recv(MAX_REQUEST + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(fd)
            return
        if not data:
            self._drop(fd)
            return
        c.inbuf += data
        if b"\n" not in c.inbuf and len(c.inbuf) <= MAX_REQUEST:
            return  # wait for the rest of the line (the deadline bounds the wait)
        line = c.inbuf.split(b"\n", 1)[0]
        self.loop.modify(fd, select.EPOLLOUT)  # one request per connection: stop reading
        c.outbuf = self._answer(line, c.uid)
        self._flush(fd, c)

    def _answer(self, line: bytes, uid: int) -> bytes:
        try:
            verb, args = parse_request(line)
            check_request(verb, args, uid)
            return format_reply(True, self.handle(verb, args, uid))
        except RequestError as e:
            return format_reply(False, error=str(e), code=e.code)
        except Exception as e:  # noqa: BLE001 - a bug answers with an error, PID 1 goes on
            return format_reply(False, error=f"internal error: {e!r}", code=1)

    def _flush(self, fd: int, c: Client) -> None:
        try:
            sent = c.sock.send(c.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(fd)
            return
        c.outbuf = c.outbuf[sent:]
        if not c.outbuf:
            self._drop(fd)
