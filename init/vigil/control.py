"""The control socket's server: a line-based protocol (vigil.protocol) where every request
gets exactly one reply.

Every socket is non-blocking and every connection has deadlines, so a client that
connects and stalls (or never reads its reply) costs one fd for a short while and nothing
else. The table of connections is bounded; when it is full, a newcomer takes the place of
the oldest unprivileged client that has not sent its request yet, and root (uid 0) takes
the place of any unprivileged client: a thousand idle users cannot keep root's
`vigilctl poweroff` out. Verbs that change anything need the peer's uid (SO_PEERCRED) to
be 0. Out of file descriptors (EMFILE), a waiting connection is told so through a spare
descriptor kept for that, or the socket is left alone for a second; supervision goes on.
"""

import errno
import os
import select
import socket
import struct
from collections.abc import Callable

from vigil import jsonc as json  # json.dumps and json.loads without re: vigil.jsonc
from vigil import logs
from vigil.protocol import MAX_REQUEST, PROTOCOL, VERBS

MAX_CLIENTS = 64         # connections at once (root may take an unprivileged one's place)
ROOT_EXTRA = 16          # more for root when every connection is already root's
REQUEST_DEADLINE = 2.0   # seconds from connect to a whole request line
CLIENT_DEADLINE = 10.0   # seconds from connect to the reply being sent
PAUSE_AFTER_EMFILE = 1.0  # seconds the listening socket is left alone when out of fds
# A test-only fault: a request for this verb raises in the connection's handler, outside
# every net but the loop's own (tests/ns/test_faults.py). Off unless the variable is set.
FAULT_VERB = os.environ.get("VIGIL_TEST_FAULT", "")


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
    __slots__ = ("sock", "uid", "pid", "inbuf", "outbuf", "timer", "asked")


class ControlServer:
    def __init__(self, loop, path: str, handle: Callable[[str, list[str], int], object],
                 fd: int = -1):
        """handle(verb, args, uid) returns the result or raises RequestError.
        fd: a listening socket inherited across a re-exec, used instead of binding anew."""
        self.loop, self.path, self.handle = loop, path, handle
        self.clients: dict[int, Client] = {}  # in the order they connected
        self.starved = False  # out of file descriptors: said once, until accept works again
        self._spare = -1      # the descriptor given up to tell a client we are out of them
        self._paused = None   # the timer that watches the listening socket again
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
            self.sock.listen(256)
        self._keep_spare()
        loop.add(self.sock.fileno(), self._accept)

    def _keep_spare(self) -> None:
        if self._spare < 0:
            try:
                self._spare = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._spare = -1

    def _accept(self, _mask: int) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if self._starving(e):
                        continue  # told one client through the spare fd: the next one
                return  # anything else: try again on the next event
            if self.starved:
                self.starved = False
                logs.say("control socket: file descriptors are back, accepting again")
            try:
                self._admit(conn)
            except OSError:
                conn.close()

    def _starving(self, e: OSError) -> bool:
        """accept failed for want of a descriptor. Through the spare one, tell a waiting
        client and close it (True: try the next); without it, stop watching the socket for
        a while, so that a level-triggered epoll does not spin on it (False)."""
        if not self.starved:
            self.starved = True
            logs.warn(f"control socket: cannot accept: {e.strerror}; supervision goes on")
        if self._spare >= 0:
            os.close(self._spare)
            self._spare = -1
            try:
                conn, _ = self.sock.accept()
            except OSError:
                conn = None
            if conn is not None:
                _refuse(conn, "vigil is out of file descriptors, try again later")
                self._keep_spare()
                if self._spare >= 0:
                    return True
        self._keep_spare()
        self.loop.remove(self.sock.fileno())
        self._paused = self.loop.call_later(PAUSE_AFTER_EMFILE, self._resume)
        return False

    def _resume(self) -> None:
        self._paused = None
        self._keep_spare()
        self.loop.add(self.sock.fileno(), self._accept)
        self._accept(select.EPOLLIN)

    def _admit(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        pid, uid = self._peer(conn)
        if not self._make_room(uid):
            _refuse(conn, "too many clients")
            return
        c = Client()
        c.sock, c.inbuf, c.outbuf, c.pid, c.uid, c.asked = conn, b"", b"", pid, uid, False
        fd = conn.fileno()
        self.clients[fd] = c
        c.timer = self.loop.call_later(REQUEST_DEADLINE, lambda fd=fd: self._drop(fd))
        self.loop.add(fd, lambda mask, fd=fd: self._on_client(fd, mask))

    @staticmethod
    def _peer(conn: socket.socket) -> tuple[int, int]:
        """(pid, uid) of the client, as the kernel saw it connect (SO_PEERCRED)."""
        pid, uid, _gid = struct.unpack(
            "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return pid, uid

    def _make_room(self, uid: int) -> bool:
        """Room for one more client of this uid, taking an unprivileged one's place if
        needed: the oldest that has not asked yet, or for root the oldest at all. A client
        whose request is already there is answered rather than put out."""
        if len(self.clients) < MAX_CLIENTS:
            return True
        for fd in list(self.clients):  # oldest first
            c = self.clients.get(fd)
            if c is None or c.uid == 0:
                continue
            if not c.asked:
                self._on_client(fd, select.EPOLLIN)
                if fd not in self.clients:
                    return True  # answered and closed: its slot is free
            if uid == 0 or not c.asked:
                self._drop(fd, b"too many clients: a newer one took your place")
                return True
        return uid == 0 and len(self.clients) < MAX_CLIENTS + ROOT_EXTRA

    def _drop(self, fd: int, why: bytes = b"") -> None:
        c = self.clients.pop(fd, None)
        if c is None:
            return
        c.timer.cancel()
        self.loop.remove(fd)
        if why and not c.outbuf:
            _refuse(c.sock, why.decode())
        else:
            c.sock.close()

    def _on_client(self, fd: int, mask: int) -> None:
        c = self.clients.get(fd)
        if c is None:
            return
        if mask & select.EPOLLOUT:
            self._flush(fd, c)
            return
        if c.asked:
            return
        data = self._io(fd, c.sock.recv, MAX_REQUEST + 1)
        if data is None:
            return
        if not data:  # the client closed before its line was whole
            self._drop(fd)
            return
        c.inbuf += data
        if b"\n" not in c.inbuf and len(c.inbuf) <= MAX_REQUEST:
            return  # wait for the rest of the line (the deadline bounds the wait)
        line = c.inbuf.split(b"\n", 1)[0]
        c.asked = True
        c.timer.cancel()  # now the reply has until CLIENT_DEADLINE to be read
        c.timer = self.loop.call_later(CLIENT_DEADLINE - REQUEST_DEADLINE,
                                       lambda fd=fd: self._drop(fd))
        self.loop.modify(fd, select.EPOLLOUT)  # one request per connection: stop reading
        if FAULT_VERB and line.split(b" ")[1:2] == [FAULT_VERB.encode()]:
            raise RuntimeError(f"test fault (VIGIL_TEST_FAULT={FAULT_VERB})")
        c.outbuf = self._answer(line, c.uid)
        self._flush(fd, c)

    def _io(self, fd: int, op, arg):
        """op(arg) on a client's socket; None when it would block (the loop says when to
        try again) or when the client is gone (it is dropped)."""
        try:
            return op(arg)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            self._drop(fd)
            return None

    def _answer(self, line: bytes, uid: int) -> bytes:
        try:
            verb, args = parse_request(line)
            check_request(verb, args, uid)
            return format_reply(True, self.handle(verb, args, uid))
        except RequestError as e:
            return format_reply(False, error=str(e), code=e.code)
        except Exception as e:  # noqa: BLE001 - a bug answers with an error, PID 1 goes on
            logs.exception(f"control request {line[:80]!r}", e)
            return format_reply(False, error=f"internal error: {e!r}", code=1)

    def _flush(self, fd: int, c: Client) -> None:
        sent = self._io(fd, c.sock.send, c.outbuf)
        if sent is None:
            return
        c.outbuf = c.outbuf[sent:]
        if not c.outbuf:
            self._drop(fd)


def _refuse(conn: socket.socket, why: str) -> None:
    """One error reply, if the socket takes it at once, and close."""
    try:
        conn.send(format_reply(False, error=why, code=1))
    except OSError:
        pass
    conn.close()
