"""/run/initctl: the requests of sysvinit's and systemd's own commands, as initreq.h lays
them out, and what vigil does with each."""

import os
import struct

from vigil import initctl


def request(cmd, runlevel=0, data=b""):
    # struct init_request: int magic, cmd, runlevel, sleeptime; char data[368]
    return struct.pack("=iiii368s", 0x03091969, cmd, runlevel, 0, data)


class Loop:
    def __init__(self):
        self.fds = {}

    def add(self, fd, callback):
        self.fds[fd] = callback


def test_requests_are_384_bytes_and_a_bad_magic_is_dropped():
    good = request(1, ord("6"))
    assert len(good) == 384
    bad = struct.pack("=iiii368s", 0x1234, 1, ord("0"), 0, b"")
    found, rest = initctl.parse(good + bad + good[:100])
    assert found == [(1, ord("6"), b"")] and rest == good[:100]


def test_what_each_request_does(tmp_path):
    acts = []
    loop = Loop()
    ch = initctl.Channel(loop, acts.append, str(tmp_path / "initctl"))
    assert (os.stat(ch.path).st_mode & 0o7777) == 0o600

    def send(*reqs):
        fd = os.open(ch.path, os.O_WRONLY | os.O_NONBLOCK)   # as systemctl opens it
        os.write(fd, b"".join(reqs))
        os.close(fd)
        loop.fds[ch.fd](0)

    send(request(1, ord("0")))                                   # telinit 0, systemctl
    send(request(6, data=b"INIT_HALT=HALT"), request(1, ord("0")))   # shutdown -H now
    send(request(6, data=b"INIT_HALT=POWEROFF"), request(1, ord("0")))  # shutdown -P
    send(request(6, data=b"INIT_HALT"), request(1, ord("6")))    # unset, then reboot
    send(request(1, ord("q")), request(1, ord("S")), request(1, ord("3")),
         request(1, ord("U")), request(1, ord("7")), request(2))
    # a request cut in two writes is put together
    whole = request(1, ord("6"))
    fd = os.open(ch.path, os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, whole[:200])
    loop.fds[ch.fd](0)
    os.write(fd, whole[200:])
    os.close(fd)
    loop.fds[ch.fd](0)
    assert acts == ["poweroff", "halt", "poweroff", "reboot", "reload", "rescue", "default",
                    "reexec", "power-failure", "reboot"]
    os.close(ch.fd)
