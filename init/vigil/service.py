"""One service's state machine: a current state, a goal, a named phase, and why.

    state   what users see: stopped, starting, running, stopping, done, failed
    goal    what it should be: up or down (vigilctl start/stop, boot, a dependent)
    phase   which wait, while starting or stopping
    why     a small structured value (kind + details) saying why it is where it is;
            `vigilctl status` prints its text and --json carries the value itself

                 want()                 launch()                  ready
    stopped ───────────► starting ───────────────► starting ─────────────► running
    done                 (dependencies)            (readiness)                │
    failed                    ▲                        │ exit, restart left   │
                              │ timer                  ▼                      │
                              └──────────────── starting (backoff)            │
                                                       │ no restart left      │
                                                       ▼                      │
                                                 failed / done                │
                     request_stop() / request_restart()                      │
    stopped ◄── stopping (killed) ◄── stopping (signalled) ◄── stopping (dependents) ◄┘
       │                                                      (goal up: straight back
       └─ goal up (a restart): straight to starting, dependents see no stop    to starting)

A restart is a stop whose goal stays up: when the last process is gone the service goes
back to starting without passing through stopped. A service that ends by itself with
nothing to bring it back (done, failed) has its goal set to down.

The Supervisor decides when the neighbours allow a move (`launch()` once what it is
ordered after is ready, `signal_stop()` once what is ordered after it has stopped); a
Service only decides about itself. It reaches the outside through four things given to
it: a loop (timers and the clock), a processes object (`spawn(svc, argv)` starts a
process and tracks its pid for reaping, `track(svc, pid)` adopts one from a pidfile or
MAINPID=, `kill(pgid, pid, sig)` signals), and a change callback. Tests give fakes of all
three.
"""

import os
import signal
import time
from collections import deque
from collections.abc import Callable

from vigil import logs
from vigil.spawn import SpawnError
from vigil.unit import Unit

STOPPED, STARTING, RUNNING, STOPPING, DONE, FAILED = (
    "stopped", "starting", "running", "stopping", "done", "failed")
UP, DOWN = "up", "down"

# Phases of starting
DEPENDENCIES = "dependencies"  # waiting for what it is ordered after to be ready
EXEC = "exec"                  # forked: waiting to hear that the program was exec'd
READINESS = "readiness"        # spawned: waiting for READY=1, the pidfile, or a oneshot's exit
BACKOFF = "backoff"            # exited: waiting restart_delay before the next launch
# Phases of stopping
DEPENDENTS = "dependents"      # waiting for the units ordered after it to stop first
SIGNALLED = "signalled"        # stop_signal sent; SIGKILL at stop_timeout
KILLED = "killed"              # SIGKILL sent; waiting for the exit

# Phases in which the service has a process of its own.
PROCESS_PHASES = {(STARTING, EXEC), (STARTING, READINESS), (STOPPING, DEPENDENTS),
                  (STOPPING, SIGNALLED), (STOPPING, KILLED)}

# kind -> the text users read, made from the details.
WHY_TEXTS = {
    "": "",
    "waiting": "waiting for {unit} ({state})",
    "starting": "waiting for dependencies",
    "queued": "queued: many units are starting",
    "exec": "starting {program}",
    "notify-wait": "waiting for READY=1 on $NOTIFY_SOCKET",
    "pidfile-wait": "waiting for the starting process to exit and write {pidfile}",
    "oneshot-running": "oneshot running",
    "restarting": "restarting in {delay:.2f}s after {after}",
    "cooldown-over": "retrying after the start limit cooldown",
    "start-limit": "start limit hit ({burst} starts in {interval}s); start it with "
                   "vigilctl start",
    "start-limit-retry": "start limit hit ({burst} starts in {interval}s); retrying at {at}, "
                         "or now with vigilctl start",
    "start-limit-spawn": "start limit hit ({burst} starts in {interval}s): {error}; not "
                         "retried until its unit file changes or vigilctl start",
    "exited": "exited: {status}",
    "dependency": "dependency {unit} {how}",
    "finished": "finished",
    "exited-cleanly": "exited cleanly",
    "stopped": "stopped",
    "removed": "removed",
    "restart": "restarting",
    "shutdown": "shutting down",
    "rescue": "stopped for rescue mode",
    "stop-queued": "stopping after the units ordered after it",
    "waiting-to-stop": "waiting for {unit} to stop",
    "stop-signal": "sent {signal}, SIGKILL in {timeout}s",
    "killed": "SIGKILL sent after stop_timeout",
    "invalid": "invalid unit: {error}",
}


class Why:
    """Why a unit is where it is: a kind (a key of WHY_TEXTS) and its details. A stop's
    whys carry the stop's `cause` (itself a Why), which becomes the why once stopped."""

    __slots__ = ("kind", "details")

    def __init__(self, kind: str = "", **details):
        self.kind, self.details = kind, details

    def text(self) -> str:
        details = {k: v for k, v in self.details.items() if k != "cause"}
        text = WHY_TEXTS[self.kind].format(**details)
        cause = self.details.get("cause")
        return f"{text} ({cause.text()})" if cause is not None and cause.kind else text

    def to_json(self) -> dict:
        out = {k: (v.to_json() if isinstance(v, Why) else v) for k, v in self.details.items()}
        return {"kind": self.kind, "text": self.text(), **out}

    @classmethod
    def from_json(cls, data: dict) -> "Why":
        details = {k: (cls.from_json(v) if k == "cause" else v)
                   for k, v in data.items() if k not in ("kind", "text")}
        return cls(data.get("kind", ""), **details)

    def __eq__(self, other) -> bool:
        return isinstance(other, Why) and (self.kind, self.details) == (other.kind,
                                                                        other.details)

    def __repr__(self) -> str:
        return f"Why({self.kind!r}, {self.details!r})"


NO_WHY = Why()


def _owner(pid: int) -> int:
    """The real uid of a process, or -1 if it is gone."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1


def describe_status(status: int) -> str:
    """A wait status as a user reads it: 'exit 3' or 'signal SIGSEGV'."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"signal {signal.Signals(sig).name}"
        except ValueError:
            return f"signal {sig}"
    return f"exit {os.WEXITSTATUS(status)}"


class Service:
    # Runtime fields carried over a re-exec and shown by `vigilctl dump`, as they are.
    SAVED = ("state", "goal", "phase", "since", "pid", "control", "pgid", "started",
             "requested", "ready_after", "restarts", "last_exit", "spawn_error", "delay",
             "timed_out", "status_text", "uid")

    def __init__(self, unit: Unit, loop, procs, changed: Callable[["Service"], None]):
        self.unit = unit
        self.name = unit.name
        self.loop = loop               # call_later(delay, fn) -> timer, now() -> seconds
        self._procs = procs            # spawn(svc, argv) -> pid, track(svc, pid), kill(...)
        self._changed = changed        # after each transition (the Supervisor's neighbours)
        self.state = STOPPED
        self.goal = DOWN
        self.phase = ""
        self.why = NO_WHY
        self.since = time.time()
        self.pid = 0                   # the supervised process (the pidfile's for forking)
        self.control = 0               # forking: the starting process that must exit 0 first
        self.pgid = 0
        self.started = 0.0             # loop time of the last launch
        self.requested = 0.0           # loop time the last start was asked for
        self.ready_after = None        # seconds from request to ready, for `analyze`
        self.restarts = 0
        self.last_exit = None          # "exit 3", "signal SIGKILL", or a spawn error
        self.spawn_error = ""          # why the last start could not even exec, if it could not
        self.delay = unit.restart_delay
        self.starts: deque[float] = deque()
        self.timer = None
        self.timed_out = False
        self.status_text = ""          # STATUS= from sd_notify
        self.uid = 0                   # the user it runs as, for sd_notify's MAINPID check
        self.log = None                # logs.ServiceLog, set by the Supervisor
        self.notify_fd = -1
        self.notify_path = ""

    # --- what others ask -------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state == RUNNING or (self.state == DONE and self.unit.type == "oneshot")

    @property
    def up(self) -> bool:
        """Has a process (or is running): what a stop in reverse order waits for."""
        return self.state == RUNNING or (self.state, self.phase) in PROCESS_PHASES

    def waiting(self) -> bool:
        """Starting, but not launched yet: waiting for its dependencies."""
        return self.state == STARTING and self.phase == DEPENDENCIES

    def info(self) -> dict:
        return {"name": self.name, "state": self.state, "goal": self.goal,
                "phase": self.phase, "pid": self.pid or None, "restarts": self.restarts,
                "since": round(self.since, 3), "last_exit": self.last_exit,
                "why": self.why.to_json(), "description": self.unit.description,
                "type": self.unit.type, "enabled": self.unit.enabled,
                "status": self.status_text, "log": self.log.path if self.log else None,
                "log_error": self.log.last_error if self.log else "",
                "dropped_lines": self.log.dropped if self.log else 0,
                "ready_after": self.ready_after, "path": self.unit.path}

    # --- carried over a re-exec ------------------------------------------------------
    def snapshot(self) -> dict:
        state = {f: getattr(self, f) for f in self.SAVED}
        state["why"] = self.why.to_json()
        state["starts"] = list(self.starts)
        if self.timer is not None and not self.timer.cancelled:
            state["timer_at"] = self.timer.when
        if self.log is not None:
            state["log"] = self.log.snapshot()
        if self.notify_fd >= 0:
            state["notify"] = [self.notify_fd, self.notify_path]
        return state

    def restore(self, state: dict) -> None:
        """Take the runtime state of the vigil that re-exec'd us; the timer of the phase is
        armed again at its old deadline."""
        for field in self.SAVED:
            setattr(self, field, state[field])
        self.why = Why.from_json(state["why"])
        self.starts.extend(state["starts"])
        if "timer_at" in state:
            self._arm_at(max(state["timer_at"], self.loop.now()))

    # --- transitions -----------------------------------------------------------
    def _set(self, state: str, phase: str = "", why: Why = NO_WHY) -> None:
        if state != self.state:
            self.since = time.time()
            if logs.DEBUG:
                logs.say(f"{self.name}: {self.state} -> {state} {why.text()}".rstrip())
        self.state, self.phase, self.why = state, phase, why
        self._changed(self)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _timer_action(self) -> Callable[[], None] | None:
        """What the timer of the current phase does when it fires."""
        if self.state == STARTING and self.phase == BACKOFF:
            return self._relaunch
        if self.state == STARTING and self.phase == READINESS:
            return self.on_start_timeout
        if self.state == STOPPING and self.phase == SIGNALLED:
            return self.on_kill_timer
        if self.state == FAILED and self.why.kind == "start-limit-retry":
            return self.on_cooldown
        return None

    def _arm(self, delay: float) -> None:
        self._arm_at(self.loop.now() + delay)

    def _arm_at(self, when: float) -> None:
        self._cancel_timer()
        action = self._timer_action()
        if action is not None:
            self.timer = self.loop.call_later(max(0.0, when - self.loop.now()), action)

    def want(self) -> None:
        """Should be up (boot, vigilctl start, a dependent). Clears a start-limit failure."""
        self.goal = UP
        if self.state in (STOPPED, DONE, FAILED):
            self._cancel_timer()
            self.starts.clear()
            self.delay = self.unit.restart_delay
            self.requested = self.loop.now()
            self.ready_after = None
            self._set(STARTING, DEPENDENCIES, Why("starting"))

    def wait_for(self, unit: str, state: str) -> None:
        """Still waiting for its dependencies: say which (not a transition)."""
        self.why = Why("waiting", unit=unit, state=state)

    def dependency_failed(self, dep: str, how: str) -> None:
        self.goal = DOWN
        self._cancel_timer()
        self._set(FAILED, "", Why("dependency", unit=dep, how=how))

    def launch(self, restart: bool = False) -> None:
        """Dependencies are ready: exec now, unless the start limit is hit."""
        self._cancel_timer()
        now = self.loop.now()
        while self.starts and now - self.starts[0] > self.unit.start_limit_interval:
            self.starts.popleft()
        if len(self.starts) >= self.unit.start_limit_burst:
            self._start_limit_hit()
            return
        self.starts.append(now)
        if restart:
            self.restarts += 1
        try:
            pid, execing = self._procs.spawn(self, self.unit.exec)
        except (SpawnError, OSError) as e:
            self._spawn_failed(str(e))
            return
        self.started = now
        self.pgid = pid
        self.timed_out = False
        if self.unit.type == "forking":
            self.control, self.pid = pid, 0
        else:
            self.pid = pid
        if execing:  # the loop tells us (on_exec) once the child has exec'd or failed to
            self._set(STARTING, EXEC, Why("exec", program=self.unit.exec.argv[0]))
        else:
            self._execd()

    def on_exec(self, pid: int, error: str) -> None:
        """The forked child has exec'd its program ("") or could not (the error)."""
        if (self.state, self.phase) != (STARTING, EXEC) or pid not in (self.pid, self.control):
            return  # stopped meanwhile: its exit decides
        if error:
            self.pid = self.control = 0  # it exits with 127: nothing to wait for
            self._spawn_failed(error)
        else:
            self._execd()

    def _spawn_failed(self, error: str) -> None:
        self.last_exit = self.spawn_error = error
        logs.error(f"{self.name}: cannot start: {error}")
        self._after_failure(error, ran=0.0)

    def _execd(self) -> None:
        self.spawn_error = ""
        kind = self.unit.type
        if kind == "simple":
            self.on_ready()
            return
        if kind == "forking":
            why = Why("pidfile-wait", pidfile=self.unit.pidfile)
        else:
            why = Why("notify-wait" if kind == "notify" else "oneshot-running")
        self._set(STARTING, READINESS, why)
        if kind in ("notify", "forking") and self.unit.start_timeout:
            self._arm(self.unit.start_timeout)

    def on_ready(self) -> None:
        self._cancel_timer()
        if self.ready_after is None:
            self.ready_after = round(self.loop.now() - self.requested, 4)
        self._set(RUNNING)

    def on_notify(self, message: str) -> None:
        """An sd_notify datagram on the service's own socket."""
        fields = dict(line.split("=", 1) for line in message.splitlines() if "=" in line)
        if "STATUS" in fields:
            self.status_text = fields["STATUS"][:200]
        mainpid = fields.get("MAINPID", "")
        if mainpid.isdigit() and int(mainpid) > 1 and _owner(int(mainpid)) == self.uid:
            # only a process of the service's own user: vigil will signal it at stop
            self.pid = int(mainpid)
            self._procs.track(self, self.pid)
        if fields.get("READY") == "1" and (self.state, self.phase) == (STARTING, READINESS) \
                and self.pid:
            self.on_ready()

    def on_start_timeout(self) -> None:
        self.timer = None
        self.timed_out = True
        logs.error(f"{self.name}: not ready after {self.unit.start_timeout}s, killing it")
        self._kill(signal.SIGKILL)

    def on_exit(self, pid: int, status: int) -> None:
        """A process of ours was reaped: the forking starter or the main process."""
        if pid == self.control:
            self.control = 0
            if self.state == STARTING:
                if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                    self._adopt_pidfile()
                else:
                    self._exited(status)
            elif self.state == STOPPING and not self.pid:
                self._exited(status)  # stopped while it was still starting
            return
        if pid == self.pid:
            self._exited(status)

    def _adopt_pidfile(self) -> None:
        try:
            with open(self.unit.pidfile) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError) as e:
            why = f"pidfile {self.unit.pidfile}: " + (
                e.strerror if isinstance(e, OSError) and e.strerror else "no live pid in it")
            self.last_exit = why
            self._kill(signal.SIGKILL)
            self._after_failure(why, ran=self.loop.now() - self.started)
            return
        self.pid = pid
        self._procs.track(self, pid)
        self.on_ready()

    def _exited(self, status: int) -> None:
        ran = self.loop.now() - self.started
        self.pid = 0
        self.last_exit = describe_status(status)
        if self.log:
            self.log.on_readable()
            self.log.flush_partial()
        logs.say(f"{self.name}: {self.last_exit} after {ran:.2f}s")
        if self.state == STOPPING:
            self._kill(signal.SIGKILL)  # whatever is left of its process group
            self._stop_done()
            return
        clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and not self.timed_out
        if self.unit.type == "oneshot" and clean and self.state == STARTING:
            self._cancel_timer()
            if self.ready_after is None:
                self.ready_after = round(self.loop.now() - self.requested, 4)
            self.goal = DOWN
            self._set(DONE, "", Why("finished"))
            return
        if clean and self.unit.restart != "always":
            self.goal = DOWN
            self._set(DONE, "", Why("exited-cleanly"))
            return
        self._after_failure("did not become ready in time" if self.timed_out
                            else self.last_exit, ran)

    def _after_failure(self, after: str, ran: float) -> None:
        """The process is gone (or never started): restart after a delay, or give up."""
        self._cancel_timer()
        if self.goal == DOWN or self.unit.restart == "never":
            self.goal = DOWN
            self._set(FAILED, "", Why("exited", status=after))
            return
        # A run that stayed up for start_limit_interval was healthy: back to the first delay.
        if ran >= max(self.unit.start_limit_interval, self.unit.restart_delay_max):
            self.delay = self.unit.restart_delay
        delay = self.delay
        self.delay = min(max(self.delay * 2, 0.001), self.unit.restart_delay_max)
        self._set(STARTING, BACKOFF, Why("restarting", delay=delay, after=after))
        self._arm(delay)

    def _relaunch(self) -> None:
        self.timer = None
        self.launch(restart=True)

    def _start_limit_hit(self) -> None:
        cooldown = self.unit.start_limit_cooldown
        burst, interval = self.unit.start_limit_burst, self.unit.start_limit_interval
        if self.spawn_error:  # retrying will not make a missing program appear
            why = Why("start-limit-spawn", burst=burst, interval=interval,
                      error=self.spawn_error)
        elif cooldown:
            at = time.strftime("%H:%M:%S", time.localtime(time.time() + cooldown))
            why = Why("start-limit-retry", burst=burst, interval=interval, at=at)
        else:
            why = Why("start-limit", burst=burst, interval=interval)
        logs.error(f"{self.name}: {why.text()}")
        self._set(FAILED, "", why)
        self._arm(cooldown)  # only armed for start-limit-retry

    def on_cooldown(self) -> None:
        self.timer = None
        self.starts.clear()
        self.delay = self.unit.restart_delay
        self._set(STARTING, DEPENDENCIES, Why("cooldown-over"))

    # --- stopping ------------------------------------------------------------------
    def request_stop(self, cause: Why) -> None:
        """Should be down: it stops once the units ordered after it have stopped."""
        self.goal = DOWN
        self._begin_stop(cause)

    def request_restart(self) -> None:
        """A stop whose goal stays up; with nothing to stop, a fresh start."""
        self.goal = UP
        if self.up:
            self._begin_stop(Why("restart"))
        elif self.state != STOPPING:
            self._cancel_timer()
            self.state = STOPPED  # not a transition anyone waits for: want() starts it
            self.want()

    def _begin_stop(self, cause: Why) -> None:
        if self.state == STOPPING:
            return  # already on its way; the goal decides what happens at the end
        self._cancel_timer()
        if self.up:
            self._set(STOPPING, DEPENDENTS, Why("stop-queued", cause=cause))
        else:
            self._set(STOPPED, "", cause)

    def wait_to_stop(self, unit: str) -> None:
        """Still waiting for a unit ordered after it to stop (not a transition)."""
        self.why = Why("waiting-to-stop", unit=unit, cause=self.why.details.get("cause"))

    def signal_stop(self) -> None:
        """The units ordered after it have stopped: send the stop signal."""
        cause = self.why.details.get("cause", NO_WHY)
        self._kill(self.unit.stop_signal)
        self._kill(signal.SIGCONT)  # a stopped process must wake up to see the signal
        self._set(STOPPING, SIGNALLED, Why(
            "stop-signal", signal=signal.Signals(self.unit.stop_signal).name,
            timeout=self.unit.stop_timeout, cause=cause))
        self._arm(self.unit.stop_timeout)
        if not (self.pid or self.control):  # nothing left to wait for (remain running)
            self._stop_done()

    def on_kill_timer(self) -> None:
        self.timer = None
        logs.warn(f"{self.name}: still running {self.unit.stop_timeout}s after the stop "
                  "signal, sending SIGKILL")
        self._kill(signal.SIGKILL)
        self._set(STOPPING, KILLED, Why("killed", cause=self.why.details.get("cause")))

    def _stop_done(self) -> None:
        self._cancel_timer()
        self.pid = self.control = 0
        cause = self.why.details.get("cause") or Why("stopped")
        if self.goal == UP:  # a restart: straight back to starting, dependents see no stop
            self.state = STOPPED
            self.want()
        else:
            self._set(STOPPED, "", cause)

    def _kill(self, sig: int) -> None:
        self._procs.kill(self.pgid, self.pid or self.control, sig)
