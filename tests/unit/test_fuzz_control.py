"""The control socket under hostile clients, in-process: a real ControlServer on a real Loop,
clients that send random and mutated requests in random pieces, huge lines, invalid UTF-8,
many at once. Every request gets one reply or a clean close; a rejected request never
reaches the handler (so it changes nothing); the loop never sees an exception."""

import json
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil import client, control
from vigil.control import (MAX_CLIENTS, MAX_REQUEST, VERBS, ControlServer, RequestError,
                           check_request, parse_request)
from vigil.loop import Loop

FUZZ = settings(max_examples=int(os.environ.get("VIGIL_FUZZ_EXAMPLES", "150")),
                deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])


class Recorder:
    """The verbs' stand-in: records what reached it; `boom` is a bug, `nope` a refusal."""

    def __init__(self):
        self.calls: list[tuple[str, list[str], int]] = []

    def __call__(self, verb, args, uid):
        self.calls.append((verb, args, uid))
        if args[:1] == ["boom"]:
            raise ZeroDivisionError("a bug in a verb")
        if args[:1] == ["nope"]:
            raise RequestError("no such unit: nope", 4)
        return {"verb": verb, "args": args}


class Rig:
    def __init__(self, path: str, server_class=ControlServer):
        self.errors: list = []
        self.loop = Loop(on_error=lambda what, e: self.errors.append((what, e)))
        self.handler = Recorder()
        self.server = server_class(self.loop, path, self.handler)
        self.path = path

    def turn(self) -> None:
        self.loop.call_later(0, lambda: None)  # never block: the test drives the clients
        self.loop.run_once()

    def close(self) -> None:
        for fd in list(self.server.clients):
            self.server._drop(fd)
        self.loop.remove(self.server.sock.fileno())
        self.server.sock.close()
        if self.server._spare >= 0:
            os.close(self.server._spare)
        self.loop.epoll.close()
        for c in Client.made:
            c.sock.close()
        Client.made.clear()


class Client:
    made: list["Client"] = []  # closed by Rig.close: a long fuzz run must not run out of fds

    def __init__(self, path: str, pieces: list[bytes]):
        Client.made.append(self)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.path = path
        self.connected = False
        self.connect()
        self.pieces = list(pieces)
        self.got = b""
        self.ended = False   # EOF or reset seen
        self.reset = False

    def connect(self) -> None:
        try:
            self.sock.connect(self.path)
            self.connected = True
        except BlockingIOError:
            pass  # the listen backlog is full: again at the next step

    def step(self) -> None:
        if not self.connected:
            self.connect()
            if not self.connected:
                return
        if self.pieces:
            try:
                n = self.sock.send(self.pieces[0])
                self.pieces[0] = self.pieces[0][n:]
                if not self.pieces[0]:
                    self.pieces.pop(0)
                    if not self.pieces:
                        self.sock.shutdown(socket.SHUT_WR)  # all sent: the server sees EOF
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                self.pieces = []
        if not self.ended:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except ConnectionResetError:  # closed with our unread bytes: after the reply
                self.ended = self.reset = True
                return
            if data:
                self.got += data
            else:
                self.ended = True


def drive(rig: Rig, clients: list[Client], turns: int = 5000) -> None:
    for _ in range(turns):
        for c in clients:
            c.step()
        if all(c.ended for c in clients):
            return
        rig.turn()
    raise AssertionError("clients left without an end: "
                         f"{[c.got for c in clients if not c.ended][:3]}")


def one_reply(c: Client) -> dict | None:
    """The reply of a client, at most one JSON line; None for a clean close."""
    if not c.got:
        assert not c.reset, "a reset without a reply"
        return None
    assert c.got.endswith(b"\n") and c.got.count(b"\n") == 1, c.got[:200]
    reply = json.loads(c.got)
    assert isinstance(reply["ok"], bool)
    return reply


def complete(payload: bytes) -> bool:
    """Whether the server has a whole request to answer in these bytes."""
    return b"\n" in payload[:MAX_REQUEST + 1] or len(payload) > MAX_REQUEST


def valid(line: bytes) -> bool:
    try:
        verb, args = parse_request(line)
        check_request(verb, args, 0)
    except RequestError:
        return False
    return True


words = st.sampled_from(sorted(VERBS) + ["", "boom", "nope", "x" * 50, "é", "\x00",
                                         "\x1b[2J", "1", "-n", "--all"])
requests = st.builds(lambda version, ws, sep, end: (version + sep + sep.join(ws) + end)
                     .encode("utf-8", "surrogatepass"),
                     st.sampled_from(["1", "1", "1", "2", "", "01", "1.0"]),
                     st.lists(words, max_size=6), st.sampled_from([" ", "  ", "\t", " \r"]),
                     st.sampled_from(["\n", "\n", "\r\n", "", "\nextra\n"]))
mutated = st.builds(lambda r, i, b: r[:i] + bytes([b]) + r[i + 1:], requests,
                    st.integers(0, 40), st.integers(0, 255))
payloads = st.one_of(requests, mutated, st.binary(max_size=300),
                     st.builds(lambda n, end: b"1 status " + b"a" * n + end,
                               st.integers(MAX_REQUEST - 20, 3 * MAX_REQUEST),
                               st.sampled_from([b"", b"\n"])))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)] or [b""]


@FUZZ
@given(payload=payloads, cuts=st.lists(st.integers(0, 10 ** 6), max_size=5))
def test_each_request_gets_one_reply_or_a_clean_close(tmp_path, payload, cuts):
    rig = Rig(str(tmp_path / "ctl"))
    try:
        c = Client(rig.path, split(payload, cuts))
        drive(rig, [c])
        reply = one_reply(c)
        line = payload.split(b"\n", 1)[0] if complete(payload) else None
        if line is None:
            assert reply is None, "no whole request: closed without an answer"
            assert rig.handler.calls == []
        else:
            assert reply is not None, f"a whole request unanswered: {payload[:80]!r}"
            if not valid(line):
                assert rig.handler.calls == [], "a rejected request reached the verbs"
                assert reply["ok"] is False and reply["code"] in (1, 2)
            else:
                assert len(rig.handler.calls) == 1
        assert rig.errors == [] and rig.server.clients == {}
    finally:
        rig.close()


@FUZZ
@given(batch=st.lists(st.tuples(payloads, st.lists(st.integers(0, 10 ** 6), max_size=3)),
                      min_size=2, max_size=MAX_CLIENTS + 30))
def test_many_clients_at_once(tmp_path, batch):
    rig = Rig(str(tmp_path / "ctl"))
    try:
        clients = [Client(rig.path, split(p, cuts)) for p, cuts in batch]
        drive(rig, clients)
        answered_ok = 0
        for c in clients:
            reply = one_reply(c)  # one reply, or a clean close, for each of them
            if reply is not None and reply["ok"]:
                answered_ok += 1
        assert answered_ok == len(rig.handler.calls) - sum(
            1 for _v, a, _u in rig.handler.calls if a[:1] in (["boom"], ["nope"]))
        assert rig.errors == [] and rig.server.clients == {}
    finally:
        rig.close()


def test_a_bug_in_a_verb_is_an_error_reply_with_a_traceback(tmp_path, capfd):
    rig = Rig(str(tmp_path / "ctl"))
    try:
        c = Client(rig.path, [b"1 status boom\n"])
        drive(rig, [c])
        reply = one_reply(c)
        assert reply["ok"] is False and "internal error" in reply["error"]
        err = capfd.readouterr().err
        assert "ZeroDivisionError" in err and "Traceback" in err
        c = Client(rig.path, [b"1 ping\n"])  # and the server goes on
        drive(rig, [c])
        assert one_reply(c)["ok"] is True
    finally:
        rig.close()


class FakeUids(ControlServer):
    """Peers with the uids a test gives, in the order they connect."""

    uids: list[int] = []

    def _peer(self, conn):
        return 0, self.uids.pop(0)


def test_root_takes_an_idle_users_place_when_full(tmp_path):
    FakeUids.uids = [65534] * (MAX_CLIENTS + 20) + [0]
    rig = Rig(str(tmp_path / "ctl"), FakeUids)
    try:
        idle = [Client(rig.path, []) for _ in range(MAX_CLIENTS + 20)]
        for _ in range(5):
            for c in idle:
                c.step()
            rig.turn()
        assert len(rig.server.clients) == MAX_CLIENTS
        root = Client(rig.path, [b"1 poweroff\n"])
        drive(rig, [root])
        assert one_reply(root)["ok"] is True
        assert ("poweroff", [], 0) in rig.handler.calls
        for _ in range(3):  # a reply, then the end
            for c in idle:
                c.step()
        refused = [c for c in idle if c.ended]
        assert len(refused) >= 21, "the newest took the oldest's place, then root one"
        for c in refused:
            assert one_reply(c)["ok"] is False
    finally:
        rig.close()


def test_an_idle_client_loses_its_slot_at_the_request_deadline(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "REQUEST_DEADLINE", 0.05)
    rig = Rig(str(tmp_path / "ctl"))
    try:
        c = Client(rig.path, [])
        for _ in range(3):
            c.step()
            rig.turn()
        assert len(rig.server.clients) == 1
        import time
        time.sleep(0.1)
        drive(rig, [c])
        assert one_reply(c) is None and rig.server.clients == {}
    finally:
        rig.close()


@FUZZ
@given(verb=st.text(max_size=12) | st.sampled_from(sorted(VERBS)),
       args=st.lists(st.text(max_size=5), max_size=4), uid=st.sampled_from([0, 1, 65534]))
def test_check_request_refuses_exactly_what_the_table_says(verb, args, uid):
    try:
        check_request(verb, args, uid)
        refused = False
    except RequestError as e:
        refused = True
        assert e.code in (1, 2)
    spec = VERBS.get(verb)
    allowed = spec is not None and len(args) >= spec[0] and (
        spec[1] is None or len(args) <= spec[1]) and (uid == 0 or not spec[2])
    assert refused == (not allowed)


@FUZZ
@given(st.binary(max_size=MAX_REQUEST + 50))
def test_parse_request_raises_only_request_errors(line):
    try:
        verb, args = parse_request(line)
    except RequestError as e:
        assert e.code == 2
    else:
        assert verb and all(args) and " " not in verb


def test_a_client_waits_for_room_in_a_full_backlog(tmp_path):
    # vigilctl under a flood of connects: the backlog is full when it connects. It must
    # wait for room (it failed at once with EAGAIN), and still give up at its timeout.
    import threading
    import time
    path = str(tmp_path / "ctl")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    fillers = []
    for _ in range(8):  # fill the backlog: more connects would block
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:
            s.close()
            break
        fillers.append(s)

    def serve():
        time.sleep(0.3)
        while True:
            conn, _ = server.accept()
            conn.settimeout(0.5)  # a filler never writes
            try:
                asked = conn.recv(100)
            except TimeoutError:
                asked = b""
            if asked.startswith(b"1 ping"):
                conn.sendall(b'{"ok":true,"result":"pong"}\n')
                conn.close()
                return
            conn.close()
    t = threading.Thread(target=serve)
    t.start()
    try:
        assert client.request(path, "ping", [], timeout=10) == {"ok": True, "result": "pong"}
    finally:
        t.join(10)
    with pytest.raises(BlockingIOError):  # nobody accepts: the wait ends at the timeout
        for _ in range(8):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect(path)
            fillers.append(s)
    t0 = time.monotonic()
    with pytest.raises(OSError):
        client.request(path, "ping", [], timeout=0.3)
    assert time.monotonic() - t0 < 5
    for s in fillers:
        s.close()
    server.close()
