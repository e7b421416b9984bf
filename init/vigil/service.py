"""One service's state machine: a current state, a goal, a named phase, and why.

    state   what users see: stopped, starting, running, stopping, done, failed, skipped
    goal    what it should be: up or down (vigilctl start/stop, boot, a dependent)
    phase   which step, while starting, stopping or reloading
    why     a small structured value (kind + details) saying why it is where it is;
            `vigilctl status` prints its text and --json carries the value itself

Starting, each phase only when the unit has something for it:

    dependencies ─► pre-start ─► exec ─► readiness ─► post-start ─► running (or done)
    (the Supervisor  exec_start_pre  the main    READY=1, the       exec_start_post
     says when)      one by one      process     pidfile, a
                                     exec'd      oneshot's exit

Stopping (a stop or restart asked for, or a failure that tears the start down):

    dependents ─► stop-command ─► signalled ─► killed ─► post-stop ─► stopped
    (what is       exec_stop      stop_signal   SIGKILL    exec_stop_post
     after it)                    (kill_mode)   at stop_timeout

When the main process ends by itself, exec_stop_post runs (state stopping, phase post-stop)
and then the restart policy decides: starting (backoff) and a new launch after the delay,
or done (a clean end), or failed. A restart is a stop whose goal stays up: when the last
process is gone the service goes back to starting without passing through stopped.

The Supervisor decides when the neighbours allow a move (`launch()` once what it is ordered
after is ready, `signal_stop()` once what is ordered after it has stopped); a Service only
decides about itself. It reaches the outside through three things given to it: a loop
(timers and the clock), a processes object (`spawn(svc, command, env)` starts a process and
tracks its pid, `track(svc, pid)` adopts one from a pidfile or MAINPID=, `kill(pgid, pid,
sig)` signals, `prepare(svc)`/`cleanup(svc)` make and remove its directories), and a change
callback. Tests give fakes of all three.
"""

import os
import signal
import time
from collections.abc import Callable

from vigil import conditions, logs
from vigil.spawn import SpawnError
from vigil.unit import Unit

STOPPED, STARTING, RUNNING, STOPPING, DONE, FAILED, SKIPPED = (
    "stopped", "starting", "running", "stopping", "done", "failed", "skipped")
UP, DOWN = "up", "down"

# Phases of starting
DEPENDENCIES = "dependencies"  # waiting for what it is ordered after to be ready
PRE = "pre-start"              # exec_start_pre, one command after the other
EXEC = "exec"                  # forked: waiting to hear that the program was exec'd
READINESS = "readiness"        # spawned: waiting for READY=1, the pidfile, or a oneshot's exit
POST = "post-start"            # exec_start_post
BACKOFF = "backoff"            # exited: waiting restart_delay before the next launch
# Phase of running
RELOAD = "reloading"           # exec_reload
# Phases of stopping
DEPENDENTS = "dependents"      # waiting for the units ordered after it to stop first
STOP_CMD = "stop-command"      # exec_stop
SIGNALLED = "signalled"        # stop_signal sent; SIGKILL at stop_timeout
KILLED = "killed"              # SIGKILL sent; waiting for the exit
POST_STOP = "post-stop"        # exec_stop_post, after a stop or after the main process ended

PIDFILE_WAIT, PIDFILE_RETRY = 5.0, 0.1  # seconds (see _adopt_pidfile)

# The phase each command list runs in, and its name as users write it.
COMMAND_PHASES = {PRE: "exec_start_pre", POST: "exec_start_post", RELOAD: "exec_reload",
                  STOP_CMD: "exec_stop", POST_STOP: "exec_stop_post"}

# kind -> the text users read, made from the details.
WHY_TEXTS = {
    "": "",
    "waiting": "waiting for {unit} ({state})",
    "starting": "waiting for dependencies",
    "queued": "queued: many units are starting",
    "command": "running {key} {command}",
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
    "requisite": "requisite {unit} is not running ({state})",
    "condition": "condition failed: {condition}",
    "assertion": "assertion failed: {condition}",
    "masked": "masked",
    "finished": "finished",
    "exited-cleanly": "exited cleanly",
    "remains": "active (its command has exited)",
    "reload-failed": "reload failed: {status}",
    "stopped": "stopped",
    "removed": "removed",
    "restart": "restarting",
    "shutdown": "shutting down",
    "rescue": "stopped for rescue mode",
    "conflict": "stopped: {unit} conflicts with it",
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


def result_of(status: int, success: tuple) -> str:
    """How a process ended, as the restart policy sees it: success, exit-code or signal.
    success: the unit's success_exit_status (codes and signal names) besides exit 0."""
    if os.WIFSIGNALED(status):
        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            return "signal"
        return "success" if name in success else "signal"
    code = os.WEXITSTATUS(status)
    return "success" if code == 0 or code in success else "exit-code"


def restart_wanted(policy: str, result: str) -> bool:
    """systemd's Restart= table; `spawn` (could not exec) counts as a failed exit code."""
    return {"always": True, "never": False,
            "on-success": result == "success",
            "on-failure": result != "success",
            "on-abnormal": result in ("signal", "timeout", "watchdog"),
            "on-abort": result == "signal",
            "on-watchdog": result == "watchdog"}[policy]


def _prevented(status: int, prevent: tuple) -> bool:
    """restart_prevent_exit_status: an exit code or signal that must not be restarted."""
    if os.WIFSIGNALED(status):
        try:
            return signal.Signals(os.WTERMSIG(status)).name in prevent
        except ValueError:
            return False
    return os.WEXITSTATUS(status) in prevent


class Service:
    # One per unit, kept for the machine's life: no __dict__ (a thousand units, ~1 MB less).
    __slots__ = ("unit", "name", "loop", "_procs", "_changed", "state", "goal", "phase", "why",
                 "since", "pid", "control", "pgid", "commands", "command", "started",
                 "requested", "ready_after", "restarts", "last_exit", "spawn_error", "result",
                 "failure", "exit_status", "was_running", "delay", "starts", "timer",
                 "watchdog_timer", "status_text", "uid", "log", "notify_fd", "notify_path",
                 "launched", "last_change", "waited_for")
    # Runtime fields carried over a re-exec and shown by `vigilctl dump`, as they are.
    SAVED = ("state", "goal", "phase", "since", "pid", "control", "pgid", "started",
             "requested", "ready_after", "launched", "last_change", "waited_for", "restarts",
             "last_exit", "spawn_error", "delay", "result", "failure", "exit_status",
             "was_running", "status_text", "uid")

    def __init__(self, unit: Unit, loop, procs, changed: Callable[["Service"], None]):
        self.unit = unit
        self.name = unit.name
        self.loop = loop               # call_later(delay, fn) -> timer, now() -> seconds
        self._procs = procs            # spawn, track, kill, prepare, cleanup (see above)
        self._changed = changed        # after each transition (the Supervisor's neighbours)
        self.state = STOPPED
        self.goal = DOWN
        self.phase = ""
        self.why = NO_WHY
        self.since = time.time()
        self.pid = 0                   # the main process (the pidfile's for forking)
        self.control = 0               # a command's process, or the forking starter
        self.pgid = 0                  # the main process's group
        self.commands: list = []       # what is left to run in this phase (lists, not
                                       # deques: a deque costs 600 bytes a service)
        self.command = None            # the Command the control process runs
        self.started = 0.0             # loop time of the last launch
        self.requested = 0.0           # loop time the last start was asked for
        self.ready_after = None        # seconds from request to ready, for `analyze`
        self.launched = None           # loop time of the launch that got it ready (analyze)
        self.last_change = 0.0         # loop time of the last change of state (analyze)
        self.waited_for = ""           # the last unit it waited for before its launch
        self.restarts = 0
        self.last_exit = None          # "exit 3", "signal SIGKILL", or why it could not start
        self.spawn_error = ""          # why the last start could not even exec, if it could not
        self.result = ""               # how this run ended, once it has: success, exit-code...
        self.failure = ""              # what failed, when not the main process's exit
        self.exit_status = 0           # the wait status behind result
        self.was_running = False       # got to running in this run (exec_stop only runs then)
        self.delay = unit.restart_delay
        self.starts: list[float] = []  # loop times of the starts within the start limit
        self.timer = None              # the phase's timer (see _on_timer)
        self.watchdog_timer = None
        self.status_text = ""          # STATUS= from sd_notify
        self.uid = 0                   # the user it runs as, for sd_notify's MAINPID check
        self.log = None                # logs.ServiceLog, set by the Supervisor
        self.notify_fd = -1
        self.notify_path = ""

    # --- what others ask -------------------------------------------------------
    @property
    def ready(self) -> bool:
        """What is ordered after it may start: running, a oneshot done, or skipped."""
        return self.state in (RUNNING, SKIPPED) or (
            self.state == DONE and self.unit.type == "oneshot")

    @property
    def up(self) -> bool:
        """Has a process (or is running): what a stop in reverse order waits for."""
        return self.state in (RUNNING, STOPPING) or (
            self.state == STARTING and self.phase not in (DEPENDENCIES, BACKOFF))

    def waiting(self) -> bool:
        """Starting, but not launched yet: waiting for its dependencies."""
        return self.state == STARTING and self.phase == DEPENDENCIES

    def info(self) -> dict:
        return {"name": self.name, "state": self.state, "goal": self.goal,
                "phase": self.phase, "pid": self.pid or None, "restarts": self.restarts,
                "since": round(self.since, 3), "last_exit": self.last_exit,
                "why": self.why.to_json(), "description": self.unit.description,
                "type": self.unit.type, "enabled": self.unit.enabled,
                "origin": self.unit.origin, "status": self.status_text,
                "log": self.log.path if self.log else None,
                "log_error": self.log.last_error if self.log else "",
                "dropped_lines": self.log.dropped if self.log else 0,
                "ready_after": self.ready_after, "path": self.unit.path}

    # --- carried over a re-exec ------------------------------------------------------
    def snapshot(self) -> dict:
        state = {f: getattr(self, f) for f in self.SAVED}
        state["why"] = self.why.to_json()
        state["starts"] = list(self.starts)
        state["commands"] = [c.to_json() for c in self.commands]
        state["command"] = self.command.to_json() if self.command else None
        if self.timer is not None and not self.timer.cancelled:
            state["timer_at"] = self.timer.when
        if self.watchdog_timer is not None and not self.watchdog_timer.cancelled:
            state["watchdog_at"] = self.watchdog_timer.when
        if self.log is not None:
            state["log"] = self.log.snapshot()
        if self.notify_fd >= 0:
            state["notify"] = [self.notify_fd, self.notify_path]
        return state

    def restore(self, state: dict) -> None:
        """Take the runtime state of the vigil that re-exec'd us; the timer of the phase is
        armed again at its old deadline."""
        from vigil.command import Command
        for field in self.SAVED:  # a field the older vigil did not have keeps its default
            setattr(self, field, state.get(field, getattr(self, field)))
        self.why = Why.from_json(state["why"])
        self.starts.extend(state["starts"])
        self.commands.extend(Command.from_json(c) for c in state["commands"])
        self.command = Command.from_json(state["command"]) if state["command"] else None
        if "timer_at" in state:
            self._arm_at(state["timer_at"])
        if "watchdog_at" in state:
            self.watchdog_timer = self.loop.call_later(
                max(0.0, state["watchdog_at"] - self.loop.now()), self.on_watchdog)

    # --- transitions -----------------------------------------------------------
    def _set(self, state: str, phase: str = "", why: Why = NO_WHY) -> None:
        if state != self.state:
            self.since = time.time()
            self.last_change = self.loop.now()
            if logs.DEBUG:
                logs.say(f"{self.name}: {self.state} -> {state} {why.text()}".rstrip())
        self.state, self.phase, self.why = state, phase, why
        self._changed(self)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _arm(self, delay: float) -> None:
        self._arm_at(self.loop.now() + delay)

    def _arm_at(self, when: float) -> None:
        self._cancel_timer()
        self.timer = self.loop.call_later(max(0.0, when - self.loop.now()), self._on_timer)

    def _on_timer(self) -> None:
        """The phase's timer: what it means depends on where the service is now."""
        self.timer = None
        if self.state == STARTING and self.phase == BACKOFF:
            self.launch(restart=True)
        elif self.state == STARTING:
            self.on_start_timeout()
        elif self.state == STOPPING and self.phase in (STOP_CMD, SIGNALLED, POST_STOP):
            self.on_kill_timer()
        elif self.state == FAILED and self.why.kind == "start-limit-retry":
            self.on_cooldown()

    def want(self) -> None:
        """Should be up (boot, vigilctl start, a dependent). Clears a start-limit failure."""
        self.goal = UP
        if self.state in (STOPPED, DONE, FAILED, SKIPPED):
            self._cancel_timer()
            self.starts.clear()
            self.delay = self.unit.restart_delay
            self.requested = self.loop.now()
            self.ready_after = self.launched = None
            self.waited_for = ""
            self._set(STARTING, DEPENDENCIES, Why("starting"))

    def wait_for(self, unit: str, state: str) -> None:
        """Still waiting for its dependencies: say which (not a transition)."""
        self.why = Why("waiting", unit=unit, state=state)
        self.waited_for = unit

    def dependency_failed(self, dep: str, how: str) -> None:
        self._give_up(Why("dependency", unit=dep, how=how))

    def requisite_missing(self, dep: str, state: str) -> None:
        self._give_up(Why("requisite", unit=dep, state=state))

    def _give_up(self, why: Why, state: str = FAILED) -> None:
        self.goal = DOWN
        self._cancel_timer()
        self._set(state, "", why)

    # --- starting ------------------------------------------------------------------
    def launch(self, restart: bool = False) -> None:
        """What it is ordered after is ready: start now, unless the start limit is hit or a
        condition does not hold."""
        self._cancel_timer()
        if self.unit.masked:
            self._give_up(Why("masked"))
            return
        failed = conditions.failed_condition(self.unit)
        if failed:
            self._give_up(Why("condition", condition=failed), SKIPPED)
            return
        failed = conditions.failed_assertion(self.unit)
        if failed:
            self._give_up(Why("assertion", condition=failed))
            return
        now = self.loop.now()
        while self.starts and now - self.starts[0] > self.unit.start_limit_interval:
            del self.starts[0]
        if len(self.starts) >= self.unit.start_limit_burst:
            self._start_limit_hit()
            return
        self.starts.append(now)
        if restart:
            self.restarts += 1
        self.started = now
        self.result, self.failure, self.exit_status, self.was_running = "", "", 0, False
        try:
            self._procs.prepare(self)  # runtime, state, logs and cache directories
        except (SpawnError, OSError) as e:
            self._spawn_failed(str(e))
            return
        if self.unit.start_timeout and (self.unit.type in ("notify", "forking")
                                        or self.unit.exec_start_pre or self.unit.exec_start_post):
            self._arm(self.unit.start_timeout)
        self._run_commands(STARTING, PRE, self.unit.exec_start_pre)

    def _start_main(self) -> None:
        if self.unit.exec is None:  # a group, or a oneshot that is only its pre/post commands
            self._main_ready()
            return
        try:
            pid, execing = self._procs.spawn(self, self.unit.exec, {})
        except (SpawnError, OSError) as e:
            self._spawn_failed(str(e))
            return
        self.pgid = pid
        if self.unit.type == "forking":
            self.control, self.command, self.pid = pid, self.unit.exec, 0
        else:
            self.pid = pid
        if execing:  # the loop tells us (on_exec) once the child has exec'd or failed to
            self._set(STARTING, EXEC, Why("exec", program=self.unit.exec.argv[0]))
        else:
            self._execd()

    def on_exec(self, pid: int, error: str) -> None:
        """A forked child has exec'd its program ("") or could not (the error)."""
        if pid == self.control and self.phase in COMMAND_PHASES:
            if error:
                self._command_done(error, ok=False)
            return
        if (self.state, self.phase) != (STARTING, EXEC) or pid not in (self.pid, self.control):
            return  # stopped meanwhile: its exit decides
        if error:
            self.pid = self.control = 0  # it exits with 127: nothing to wait for
            self._spawn_failed(error)
        else:
            self._execd()

    def _spawn_failed(self, error: str) -> None:
        self.last_exit = self.spawn_error = self.failure = error
        logs.error(f"{self.name}: cannot start: {error}")
        self.result = "exit-code"
        self._ended()

    def _execd(self) -> None:
        self.spawn_error = ""
        kind = self.unit.type
        if kind == "simple":
            self._main_ready()
            return
        if kind == "forking":
            why = Why("pidfile-wait", pidfile=self.unit.pidfile)
        else:
            why = Why("notify-wait" if kind == "notify" else "oneshot-running")
        self._set(STARTING, READINESS, why)

    def _main_ready(self) -> None:
        """The main process is up (or a oneshot's is done): post-start commands, then ready."""
        self._run_commands(STARTING, POST, self.unit.exec_start_post)

    def _started(self) -> None:
        self._cancel_timer()
        if self.ready_after is None:
            self.ready_after = self.loop.now() - self.requested
            self.launched = self.started
        self.was_running = True
        if self.unit.type == "oneshot" and not self.unit.remain_after_exit:
            self.goal = DOWN
            self._procs.cleanup(self)
            self._set(DONE, "", Why("finished"))
        elif self.unit.type == "oneshot" or (self.unit.type == "group" and not self.pid):
            self._set(RUNNING, "", Why("remains") if self.unit.type == "oneshot" else NO_WHY)
        else:
            self._set(RUNNING)
            self._arm_watchdog()

    def on_ready(self) -> None:
        """READY=1 (notify) or the pidfile adopted (forking)."""
        if (self.state, self.phase) == (STARTING, READINESS):
            self._main_ready()

    def on_notify(self, message: str, sender: int | None = None) -> None:
        """An sd_notify datagram on the service's own socket; sender is its pid as the kernel
        gives it (0: a process outside vigil's PID namespace; None: not known)."""
        if not self._may_notify(sender):
            return
        fields = dict(line.split("=", 1) for line in message.splitlines() if "=" in line)
        if "STATUS" in fields:
            self.status_text = fields["STATUS"][:200]
        mainpid = fields.get("MAINPID", "")
        if mainpid.isdigit() and int(mainpid) > 1 and _owner(int(mainpid)) == self.uid:
            # only a process of the service's own user: vigil will signal it at stop
            self.pid = int(mainpid)
            self._procs.track(self, self.pid)
        if fields.get("WATCHDOG") == "1" and self.state == RUNNING:
            self._arm_watchdog()
        if fields.get("WATCHDOG") == "trigger":
            self.on_watchdog()
        if fields.get("READY") == "1" and self.pid:
            self.on_ready()

    def _may_notify(self, sender: int) -> bool:
        """notify_access: main (the main process and its process group, vigil's notion of
        "the service" without cgroups), exec (also its commands), all, none."""
        access = self.unit.notify_access
        if access == "none":
            return False
        if access == "all" or sender is None:
            return True
        if sender == 0:
            return False  # outside vigil's PID namespace: not one of the service's processes
        if sender in (self.pid, self.pgid) or self._procs.group_of(sender) == self.pgid:
            return True
        return access == "exec" and sender == self.control

    def _arm_watchdog(self) -> None:
        if self.watchdog_timer is not None:
            self.watchdog_timer.cancel()
            self.watchdog_timer = None
        if self.unit.watchdog and self.state == RUNNING:
            self.watchdog_timer = self.loop.call_later(self.unit.watchdog, self.on_watchdog)

    def on_watchdog(self) -> None:
        """No WATCHDOG=1 in time: SIGABRT (a core dump to look at), SIGKILL if it stays."""
        self.watchdog_timer = None
        if not self.pid:
            return
        first = self.result != "watchdog"
        self.result = "watchdog"
        logs.error(f"{self.name}: watchdog: no WATCHDOG=1 for {self.unit.watchdog}s, "
                   + ("sending SIGABRT" if first else "sending SIGKILL"))
        self._procs.kill(0, self.pid, signal.SIGABRT if first else signal.SIGKILL)
        if first:
            self.watchdog_timer = self.loop.call_later(self.unit.stop_timeout, self.on_watchdog)

    def on_start_timeout(self) -> None:
        self.result = "timeout"
        logs.error(f"{self.name}: not started after {self.unit.start_timeout}s, killing it")
        self._signal(signal.SIGKILL)

    # --- commands (pre, post, reload, stop, post-stop) ------------------------------------
    def _run_commands(self, state: str, phase: str, commands: tuple) -> None:
        """The phase's commands one after the other; with none, the phase ends at once (its
        name alone says what comes next: _phase_done)."""
        self.commands = list(commands)
        if commands:
            self._set(state, phase, self.why)
        else:
            self.phase = phase
        self._next_command()

    def _next_command(self) -> None:
        if not self.commands:
            self._phase_done()
            return
        self.command = self.commands.pop(0)
        key = COMMAND_PHASES[self.phase]
        # a stop's cause goes along: it becomes the why once stopped
        cause = self.why.details.get("cause")
        self.why = Why("command", key=key, command=" ".join(self.command.argv),
                       **({"cause": cause} if cause is not None else {}))
        env = {"MAINPID": str(self.pid)} if self.pid else {}
        try:
            self.control, _execing = self._procs.spawn(self, self.command, env)
        except (SpawnError, OSError) as e:
            self.control = 0
            self._command_done(str(e), ok=False)

    def _command_done(self, status_text: str, ok: bool) -> None:
        """The control process ended (or could not start): next command, or the phase's
        end, or a failure."""
        command, self.control = self.command, 0
        if ok or command.ignore_failure or self.phase in (STOP_CMD, POST_STOP):
            if not ok:
                logs.warn(f"{self.name}: {COMMAND_PHASES[self.phase]} "
                          f"{' '.join(command.argv)}: {status_text} (going on)")
            self._next_command()
            return
        what = f"{COMMAND_PHASES[self.phase]} {' '.join(command.argv)}: {status_text}"
        logs.error(f"{self.name}: {what}")
        self.commands.clear()
        if self.phase == RELOAD:
            self._set(RUNNING, "", Why("reload-failed", status=what))
            return
        self.last_exit = self.failure = what
        self.result = self.result or "exit-code"  # a start timeout stays the reason
        if self.pid:  # post-start failed: the main process goes too
            self._begin_stop(Why("exited", status=what), teardown=True)
        else:
            self._ended()

    def _phase_done(self) -> None:
        self.command = None
        if self.phase == PRE:
            self._start_main()
        elif self.phase == POST:
            self._started()
        elif self.phase == RELOAD:
            self._set(RUNNING, "", NO_WHY)
        elif self.phase == STOP_CMD:
            self._stop_signal()
        elif self.phase == POST_STOP:
            self._stop_done()

    def reload(self) -> str:
        """vigilctl reload UNIT: its exec_reload commands, or SIGHUP to the main process.
        Returns what was done."""
        if self.state != RUNNING or self.phase:
            where = f"{self.state} ({self.phase})" if self.phase else self.state
            raise OSError(f"{self.name} is {where}: nothing to reload")
        if self.unit.exec_reload:
            self._run_commands(RUNNING, RELOAD, self.unit.exec_reload)
            return "exec_reload"
        if not self.pid:
            raise OSError(f"{self.name} has no process and no exec_reload")
        self._procs.kill(0, self.pid, signal.SIGHUP)
        return "SIGHUP"

    # --- processes ending ------------------------------------------------------------
    def on_exit(self, pid: int, status: int) -> None:
        """A process of ours was reaped: a command's, the forking starter, or the main one."""
        if pid == self.control:
            if self.phase in COMMAND_PHASES:
                self._command_done(describe_status(status), result_of(status, ()) == "success")
                return
            self.control = 0  # the forking starter
            if self.state == STARTING and self.result != "timeout" and \
                    os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                self._adopt_pidfile()
            elif self.state == STARTING:
                self._main_exited(status)
            elif self.state == STOPPING and not self.pid:
                self._gone()
            return
        if pid == self.pid:
            self._main_exited(status)

    def _adopt_pidfile(self, tries: int = 0) -> None:
        """The starter exited 0: supervise the pid its pidfile names. A daemon's child may
        write the file a moment after its parent exits: it is looked at again every
        PIDFILE_RETRY s for PIDFILE_WAIT s before that counts as a failure."""
        if (self.state, self.phase) != (STARTING, READINESS) or self.pid:
            return  # stopped (or timed out) meanwhile
        try:
            with open(self.unit.pidfile) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError) as e:
            if tries < PIDFILE_WAIT / PIDFILE_RETRY:
                self.loop.call_later(PIDFILE_RETRY, lambda: self._adopt_pidfile(tries + 1))
                return
            why = f"pidfile {self.unit.pidfile}: " + (
                e.strerror if isinstance(e, OSError) and e.strerror else "no live pid in it")
            self.last_exit = self.failure = why
            self.result = "exit-code"
            self._signal(signal.SIGKILL)
            self._ended()
            return
        self.pid = pid
        self._procs.track(self, pid)
        self.on_ready()

    def _main_exited(self, status: int) -> None:
        ran = self.loop.now() - self.started
        self.pid = 0
        self.last_exit = describe_status(status)
        if self.watchdog_timer is not None:
            self.watchdog_timer.cancel()
            self.watchdog_timer = None
        if self.log:
            self.log.on_readable()
            self.log.flush_partial()
        logs.say(f"{self.name}: {self.last_exit} after {ran:.2f}s")
        result = self.result or ("success" if self.unit.exec and self.unit.exec.ignore_failure
                                 else result_of(status, self.unit.success_exit_status))
        self.exit_status = status
        if self.state == STOPPING:
            if self.unit.kill_mode in ("control-group", "mixed") and self.unit.send_sigkill:
                self._procs.kill(self.pgid, 0, signal.SIGKILL)  # what is left of its group
            if self.phase != STOP_CMD:  # exec_stop may still be running: it ends the phase
                self._gone()
            return
        if self.unit.type == "oneshot" and result == "success" and self.state == STARTING:
            self._main_ready()  # a oneshot is ready when it exits cleanly
            return
        if self.unit.remain_after_exit and result == "success" and self.state == RUNNING:
            self._set(RUNNING, "", Why("remains"))  # active until stopped, as systemd has it
            return
        self.result = result
        self._ended()

    def _ended(self) -> None:
        """This run is over by itself (or could not begin): exec_stop_post, then decide."""
        self._cancel_timer()
        if self.control:
            self._procs.kill(self.control, self.control, signal.SIGKILL)
            self.control = 0
        self._run_commands(STOPPING, POST_STOP, self.unit.exec_stop_post)

    def _decide(self) -> None:
        """After a run that ended by itself: restart after a delay, or done, or failed."""
        self._procs.cleanup(self)
        result, after = self.result, self.failure or self.last_exit
        if self.result == "timeout":
            after = "did not become ready in time"
        elif self.result == "watchdog":
            after = "the watchdog"
        prevented = self.exit_status and _prevented(self.exit_status,
                                                    self.unit.restart_prevent_exit_status)
        restart = self.goal == UP and restart_wanted(self.unit.restart, result) and not prevented
        if not restart:
            self.goal = DOWN
            if result == "success":
                self._set(DONE, "", Why("exited-cleanly"))
            else:
                self._set(FAILED, "", Why("exited", status=after))
            return
        # A run that stayed up for start_limit_interval was healthy: back to the first delay.
        ran = self.loop.now() - self.started
        if ran >= max(self.unit.start_limit_interval, self.unit.restart_delay_max):
            self.delay = self.unit.restart_delay
        delay = self.delay
        self.delay = min(max(self.delay * 2, 0.001), self.unit.restart_delay_max)
        self._set(STARTING, BACKOFF, Why("restarting", delay=delay, after=after))
        self._arm(delay)

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
        if why.kind == "start-limit-retry":
            self._arm(cooldown)

    def on_cooldown(self) -> None:
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

    def _begin_stop(self, cause: Why, teardown: bool = False) -> None:
        """teardown: a failed start takes the main process down at once (no dependents
        to wait for: nothing could start after it)."""
        if self.state == STOPPING:
            return  # already on its way; the goal decides what happens at the end
        self._cancel_timer()
        if self.watchdog_timer is not None:
            self.watchdog_timer.cancel()
            self.watchdog_timer = None
        if not self.up:
            self._set(STOPPED, "", cause)
        elif teardown:
            self._set(STOPPING, DEPENDENTS, Why("stop-queued", cause=cause))
            self.signal_stop()
        else:
            self._set(STOPPING, DEPENDENTS, Why("stop-queued", cause=cause))

    def wait_to_stop(self, unit: str) -> None:
        """Still waiting for a unit ordered after it to stop (not a transition)."""
        self.why = Why("waiting-to-stop", unit=unit, cause=self.why.details.get("cause"))

    def signal_stop(self) -> None:
        """The units ordered after it have stopped: exec_stop, then the stop signal."""
        # exec_stop only for a service that got to run (not for a failed start)
        self._stop_commands(STOP_CMD, self.unit.exec_stop
                            if self.was_running and not self.result else ())

    def _stop_commands(self, phase: str, commands: tuple) -> None:
        """exec_stop or exec_stop_post, bounded by stop_timeout (then SIGKILL)."""
        if commands:
            self._arm(self.unit.stop_timeout)
        self._run_commands(STOPPING, phase, commands)

    def _stop_signal(self) -> None:
        cause = self.why.details.get("cause", NO_WHY)
        if self.control:  # a pre/post command still running: it goes with the main process
            self._procs.kill(self.control, self.control, self.unit.stop_signal)
            self._procs.kill(self.control, self.control, signal.SIGCONT)
        if (not self.pid and not self.control) or self.unit.kill_mode == "none":
            self._gone()  # nothing to wait for (a remaining oneshot, or kill_mode none)
            return
        if self.pid:
            self._signal(self.unit.stop_signal, group=self.unit.kill_mode == "control-group")
            self._signal(signal.SIGCONT, group=self.unit.kill_mode == "control-group")
        self._set(STOPPING, SIGNALLED, Why(
            "stop-signal", signal=signal.Signals(self.unit.stop_signal).name,
            timeout=self.unit.stop_timeout, cause=cause))
        self._arm(self.unit.stop_timeout)

    def on_kill_timer(self) -> None:
        what = COMMAND_PHASES.get(self.phase, "the stop signal")
        if not self.unit.send_sigkill and self.phase == SIGNALLED:
            logs.warn(f"{self.name}: still running {self.unit.stop_timeout}s after {what}; "
                      "send_sigkill is false, leaving it")
            self.pid = 0
            self._gone()
            return
        logs.warn(f"{self.name}: still running {self.unit.stop_timeout}s after {what}, "
                  "sending SIGKILL")
        if self.control:
            self._procs.kill(self.control, self.control, signal.SIGKILL)
        if self.phase == STOP_CMD or self.phase == POST_STOP:
            return  # the command's exit moves the phase on
        self._signal(signal.SIGKILL, group=self.unit.kill_mode != "process")
        self._set(STOPPING, KILLED, Why("killed", cause=self.why.details.get("cause")))

    def _gone(self) -> None:
        """The main process (and any command) is gone: exec_stop_post, then stopped."""
        self._cancel_timer()
        if self.phase == POST_STOP:
            self._stop_done()
        else:
            self._stop_commands(POST_STOP, self.unit.exec_stop_post)

    def _stop_done(self) -> None:
        self._cancel_timer()
        self.pid = self.control = 0
        self.commands.clear()
        if self.result:
            self._decide()  # the run ended by itself (or failed): the restart policy decides
            return
        cause = self.why.details.get("cause") or Why("stopped")
        self._procs.cleanup(self)
        if self.goal == UP:  # a restart: straight back to starting, dependents see no stop
            self.state = STOPPED
            self.want()
        else:
            self._set(STOPPED, "", cause)

    def _signal(self, sig: int, group: bool = True) -> None:
        """The main process (and its group), or the forking starter while it runs."""
        if self.pid:
            self._procs.kill(self.pgid if group else 0, self.pid, sig)
        elif self.control:
            self._procs.kill(self.control, self.control, sig)
