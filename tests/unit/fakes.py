"""Fakes for the state machine's seam: a loop whose clock the test moves, and processes
that are only numbers. Real processes are what tests/ns is for; here each case runs in
microseconds and every timing is exact."""

import heapq

from vigil.loop import Timer
from vigil.spawn import SpawnError
from vigil.unit import Catalog, build


class FakeLoop:
    def __init__(self):
        self.t = 1000.0
        self.timers: list[Timer] = []
        self.fds: dict = {}

    def now(self) -> float:
        return self.t

    def call_at(self, when, callback) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self.timers, timer)
        return timer

    def call_later(self, delay, callback) -> Timer:
        return self.call_at(self.t + delay, callback)

    def add(self, fd, callback, events=0):
        self.fds[fd] = callback

    def remove(self, fd):
        self.fds.pop(fd, None)

    def pending(self) -> list[float]:
        """Deadlines of the timers still armed, relative to now."""
        return sorted(t.when - self.t for t in self.timers if not t.cancelled)

    def turn(self) -> None:
        """One turn of the loop: the timers due now, not those they set for now."""
        due = []
        while self.timers and self.timers[0].when <= self.t:
            due.append(heapq.heappop(self.timers))
        for timer in due:
            if not timer.cancelled:
                timer.callback()

    def advance(self, seconds: float) -> None:
        """Move the clock, firing each timer that falls due at its own time."""
        end = self.t + seconds
        while self.timers and self.timers[0].when <= end:
            timer = heapq.heappop(self.timers)
            if not timer.cancelled:
                self.t = max(self.t, timer.when)
                timer.callback()
        self.t = end


def exited(code: int) -> int:
    """A wait status: exit with this code."""
    return code << 8


def killed(signo: int) -> int:
    """A wait status: killed by this signal."""
    return signo


class FakeProcs:
    """spawn/track/kill without processes: pids are counted up from 100."""

    def __init__(self, sup=None):
        self.sup = sup
        self.next_pid = 100
        self.started: list[tuple[str, tuple, int]] = []    # (unit, argv, pid)
        self.signals: list[tuple[int, int, int]] = []      # (pgid, pid, signal)
        self.failing: dict[str, str] = {}                   # unit -> spawn error
        self.attempts = 0                                   # spawns asked for, failed ones too
        self.forking = False    # True: like a forked child, the exec is heard of later
        self.execs: dict = {}   # what Processes has; FakeProcs reports no exec by itself
        self.envs: list[dict] = []                          # the extra env of each spawn
        self.dirs: list[tuple[str, str]] = []               # prepare/cleanup calls
        self.groups: dict[int, int] = {}                    # pid -> process group

    def spawn(self, svc, command, env) -> tuple[int, bool]:
        self.attempts += 1
        if svc.name in self.failing:
            raise SpawnError(self.failing[svc.name])
        self.next_pid += 1
        self.started.append((svc.name, tuple(command.argv), self.next_pid))
        self.envs.append(dict(env))
        self.track(svc, self.next_pid)
        return self.next_pid, self.forking

    def exec_report(self, pid, block=False) -> None:
        pass

    def track(self, svc, pid) -> None:
        if self.sup is not None:
            self.sup.pids[pid] = svc

    def kill(self, pgid, pid, sig) -> None:
        self.signals.append((pgid, pid, sig))

    def prepare(self, svc) -> None:
        self.dirs.append(("prepare", svc.name))

    def cleanup(self, svc) -> None:
        self.dirs.append(("cleanup", svc.name))

    def group_of(self, pid) -> int:
        return self.groups.get(pid, -1)

    def starts_of(self, name: str) -> list[int]:
        return [pid for unit, _argv, pid in self.started if unit == name]

    def pid_of(self, name: str) -> int:
        return self.starts_of(name)[-1]


def unit(name: str, **service):
    """A Unit from keyword arguments: [unit] keys are named unit_KEY, the rest [service]."""
    sections: dict = {"unit": {}, "service": {"exec": ["/bin/" + name], "log": "null"}}
    for key, value in service.items():
        if value is None:
            sections["service"].pop(key, None)  # exec=None: a unit without that key
        elif key.startswith("unit_"):
            sections["unit"][key[5:]] = value
        else:
            sections["service"][key] = value
    return build(name, f"/units/{name}.toml", sections, "")


def catalog(*units) -> Catalog:
    c = Catalog([], read=False)
    for u in units:
        c.units[u.name] = u
    return c
