"""/run/initctl: the FIFO through which the installed init's own commands reach PID 1.

vigil installs beside sysvinit or systemd and leaves their poweroff, reboot, halt,
shutdown, telinit and runlevel in place. Those commands, when the running init is not
theirs, all end in the same place:

  - sysvinit's halt/poweroff/reboot run `shutdown` (unless the run level is already 0 or
    6); shutdown sends INIT_HALT=HALT or POWEROFF (a SETENV request) and runs `init 0`
    or `init 6`; sysvinit's init, not being PID 1, is telinit, which writes a RUNLVL
    request;
  - systemd's systemctl (as poweroff, reboot, halt, shutdown), finding no systemd to talk
    to, writes the same RUNLVL request ("talk_initctl"); its telinit does not (systemd
    252 looks for another telinit to run instead).

Each request is sysvinit's struct init_request (initreq.h): 384 bytes, native ints
magic 0x03091969, cmd, runlevel, sleeptime, then 368 bytes of data (SETENV: "NAME=value").
vigil as the machine's PID 1 makes the FIFO (mode 0600, as sysvinit does: only root
may write) and answers it: run level 0 is a poweroff (a halt when INIT_HALT=HALT), 6 a
reboot, 1/S rescue mode, 2-5 the normal state, Q a reload, U a re-exec; the power-fail
commands are SIGPWR's action.
"""

import os
import stat
import struct

PATH = "/run/initctl"
MAGIC = 0x03091969
REQUEST = struct.Struct("=iiii368s")   # 384 bytes
CMD_RUNLVL, CMD_POWERFAIL, CMD_POWERFAILNOW, CMD_POWEROK = 1, 2, 3, 4
CMD_SETENV, CMD_UNSETENV = 6, 7


def parse(data: bytes) -> tuple[list[tuple[int, int, bytes]], bytes]:
    """Complete requests in data (cmd, runlevel, data) and what is left over. A request
    with a wrong magic is dropped (as sysvinit does)."""
    requests = []
    while len(data) >= REQUEST.size:
        magic, cmd, runlevel, _sleep, body = REQUEST.unpack_from(data)
        data = data[REQUEST.size:]
        if magic == MAGIC:
            requests.append((cmd, runlevel, body.split(b"\0", 1)[0]))
    return requests, data


RUNLEVELS = {"0": "poweroff", "6": "reboot", "1": "rescue", "S": "rescue", "s": "rescue",
             "2": "default", "3": "default", "4": "default", "5": "default",
             "Q": "reload", "q": "reload", "U": "reexec", "u": "reexec"}


class Channel:
    """The FIFO, read by the loop; `act(action)` does what a request asks: poweroff,
    halt, reboot, rescue, default, reload, reexec or power-failure."""

    def __init__(self, loop, act, path: str = PATH):
        self.loop, self.act, self.path = loop, act, path
        self.env: dict[str, str] = {}   # what SETENV said (INIT_HALT)
        self.held = b""
        try:
            if stat.S_ISFIFO(os.lstat(path).st_mode):
                os.unlink(path)   # a stale one (or a re-exec): made anew, ours
        except FileNotFoundError:
            pass
        os.mkfifo(path, 0o600)
        # read-write: the FIFO always has a writer (us), so the loop never sees EOF
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        loop.add(self.fd, self._readable)

    def _readable(self, _mask) -> None:
        try:
            chunk = os.read(self.fd, REQUEST.size * 16)
        except BlockingIOError:
            return
        requests, self.held = parse(self.held + chunk)
        for cmd, runlevel, body in requests:
            self.handle(cmd, runlevel, body)

    def handle(self, cmd: int, runlevel: int, body: bytes) -> None:
        from vigil import logs
        if cmd == CMD_SETENV and b"=" in body:
            name, value = body.decode(errors="replace").split("=", 1)
            self.env[name] = value
        elif cmd in (CMD_SETENV, CMD_UNSETENV):
            self.env.pop(body.decode(errors="replace").split("=", 1)[0], None)
        elif cmd == CMD_RUNLVL:
            level = chr(runlevel) if 0 < runlevel < 256 else "?"
            action = RUNLEVELS.get(level)
            if action == "poweroff" and self.env.get("INIT_HALT", "").upper() == "HALT":
                action = "halt"
            logs.say(f"{self.path}: run level {level}: {action or 'unknown, ignored'}")
            if action:
                self.act(action)
        elif cmd in (CMD_POWERFAIL, CMD_POWERFAILNOW):
            logs.say(f"{self.path}: power failure")
            self.act("power-failure")
        elif cmd == CMD_POWEROK:
            logs.say(f"{self.path}: power is back (nothing to cancel)")
