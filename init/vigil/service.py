"""One service's state machine: every transition is a method named for its event.

States users see (vigilctl, --json):
  stopped   not running and not wanted
  starting  wanted: waiting for dependencies, for readiness, or for a restart delay
  running   up and ready
  stopping  stop_signal sent, waiting for the process to exit (SIGKILL at stop_timeout)
  done      a oneshot that finished, or a service that exited cleanly with no restart
  failed    exited badly with no restart left, hit the start limit, or a dependency failed

Events:                        from -> to
  want()                       stopped/done/failed -> starting (waiting)
  launch()  deps are ready     starting -> starting (spawned) | running (simple)
  on_ready()  READY=1/pidfile  starting -> running
  on_exit()  main pid exited   running/starting -> starting (restart delay) | done | failed
                               stopping -> stopped
  stop()                       starting/running -> stopping | stopped
  on_kill_timer()              stopping -> stopping (SIGKILL sent)
  on_cooldown()                failed (start limit) -> starting

`reason` always says, in one place, why the service is in its state.
"""

import os
import signal
import time
from collections import deque

from vigil import logs, spawn
from vigil.unit import Unit

STOPPED, STARTING, RUNNING, STOPPING, DONE, FAILED = (
    "stopped", "starting", "running", "stopping", "done", "failed")


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
    def __init__(self, unit: Unit, sup):
        self.unit = unit
        self.sup = sup                 # the Supervisor: loop, environment, state-change hook
        self.name = unit.name
        self.state = STOPPED
        self.reason = ""
        self.since = time.time()
        self.pid = 0                   # the supervised process (the pidfile's for forking)
        self.launcher = 0              # forking: the process that must exit 0 first
        self.pgid = 0
        self.started = 0.0             # monotonic time of the last exec
        self.requested = 0.0           # monotonic time the last start was asked for
        self.ready_after = None        # seconds from request to ready, for `analyze`
        self.restarts = 0
        self.last_exit = None          # "exit 3", "signal SIGKILL", or a spawn error
        self.wanted = False            # should it be up?
        self.start_again = False       # restart: start once the stop is done
        self.delay = unit.restart_delay
        self.starts: deque[float] = deque()
        self.timer = None
        self.timed_out = False
        self.status_text = ""          # STATUS= from sd_notify
        self.stop_reason = "stopped"
        self.uid = 0                   # the user it runs as, for sd_notify's MAINPID check
        self.log: logs.ServiceLog | None = None
        self.notify_fd = -1
        self.notify_path = ""

    # --- what others ask -------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state == RUNNING or (self.state == DONE and self.unit.type == "oneshot")

    @property
    def up(self) -> bool:
        """Has a process, or is about to: what a stop in reverse order waits for."""
        return self.state in (RUNNING, STOPPING) or (
            self.state == STARTING and bool(self.pid or self.launcher))

    def waiting(self) -> bool:
        """Starting, but not launched yet: waiting for its dependencies."""
        return self.state == STARTING and not (self.pid or self.launcher) and self.timer is None

    def info(self) -> dict:
        return {"name": self.name, "state": self.state, "pid": self.pid or None,
                "restarts": self.restarts, "since": round(self.since, 3),
                "last_exit": self.last_exit, "reason": self.reason,
                "description": self.unit.description, "type": self.unit.type,
                "enabled": self.unit.enabled, "status": self.status_text,
                "log": self.log.path if self.log else None,
                "log_error": self.log.last_error if self.log else "",
                "dropped_lines": self.log.dropped if self.log else 0,
                "ready_after": self.ready_after, "path": self.unit.path}

    # --- transitions -----------------------------------------------------------
    def _set(self, state: str, reason: str = "") -> None:
        if state != self.state:
            self.since = time.time()
            if logs.DEBUG:
                logs.say(f"{self.name}: {self.state} -> {state} {reason}".rstrip())
        self.state, self.reason = state, reason
        self.sup.on_state_change(self)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def want(self) -> None:
        """Asked to start (boot, vigilctl start, a dependent). Clears a start-limit failure."""
        self.wanted = True
        if self.state == STOPPING:
            self.start_again = True
            return
        if self.state in (STOPPED, DONE, FAILED):
            self._cancel_timer()
            self.starts.clear()
            self.delay = self.unit.restart_delay
            self.requested = time.monotonic()
            self.ready_after = None
            self._set(STARTING, "waiting for dependencies")

    def dependency_failed(self, dep: str, why: str) -> None:
        self.wanted = False
        self._cancel_timer()
        self._set(FAILED, f"dependency {dep} {why}")

    def launch(self, restart: bool = False) -> None:
        """Dependencies are ready: exec now, unless the start limit is hit."""
        self._cancel_timer()
        now = time.monotonic()
        while self.starts and now - self.starts[0] > self.unit.start_limit_interval:
            self.starts.popleft()
        if len(self.starts) >= self.unit.start_limit_burst:
            self._start_limit_hit()
            return
        self.starts.append(now)
        if restart:
            self.restarts += 1
        try:
            p = spawn.plan(self.unit, self.sup.base_env, self.sup.notify_socket(self))
            self.uid = p.uid or 0
            if self.notify_path and self.uid:
                os.chown(self.notify_path, self.uid, -1)  # its user may send, others not
            out = self.log.write_fd if self.log else self.sup.output_fd(self.unit)
            pid = spawn.spawn(p, out)
        except (spawn.SpawnError, OSError) as e:
            self.last_exit = str(e)
            logs.error(f"{self.name}: cannot start: {e}")
            self._after_failure(str(e), ran=0.0)
            return
        self.started = now
        self.pgid = pid
        self.timed_out = False
        if self.unit.type == "forking":
            self.launcher, self.pid = pid, 0
            self.sup.track(pid, self)
            self._set(STARTING, "waiting for the starting process to exit and write "
                      + self.unit.pidfile)
        else:
            self.pid = pid
            self.sup.track(pid, self)
            if self.unit.type == "simple":
                self.on_ready()
            elif self.unit.type == "notify":
                self._set(STARTING, "waiting for READY=1 on $NOTIFY_SOCKET")
            else:
                self._set(STARTING, "oneshot running")
        if self.state == STARTING and self.unit.type in ("notify", "forking") \
                and self.unit.start_timeout:
            self.timer = self.sup.loop.call_later(self.unit.start_timeout, self.on_start_timeout)

    def on_ready(self) -> None:
        self._cancel_timer()
        if self.ready_after is None:
            self.ready_after = round(time.monotonic() - self.requested, 4)
        self._set(RUNNING, "")

    def on_notify(self, message: str) -> None:
        fields = dict(line.split("=", 1) for line in message.splitlines() if "=" in line)
        if "STATUS" in fields:
            self.status_text = fields["STATUS"][:200]
        mainpid = fields.get("MAINPID", "")
        if mainpid.isdigit() and int(mainpid) > 1 and _owner(int(mainpid)) == self.uid:
            # only a process of the service's own user: vigil will signal it at stop
            self.pid = int(mainpid)
            self.sup.track(self.pid, self)
        if fields.get("READY") == "1" and self.state == STARTING and self.pid:
            self.on_ready()

    def on_start_timeout(self) -> None:
        self.timer = None
        self.timed_out = True
        logs.error(f"{self.name}: not ready after {self.unit.start_timeout}s, killing it")
        self._kill(signal.SIGKILL)

    def on_exit(self, pid: int, status: int) -> None:
        """A process of ours was reaped: the launcher (forking) or the main process."""
        if pid == self.launcher:
            self.launcher = 0
            if self.state == STARTING and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                self._adopt_pidfile()
                return
            if self.state == STARTING:
                self._exited(status)
            return
        if pid != self.pid:
            return
        self._exited(status)

    def _adopt_pidfile(self) -> None:
        try:
            with open(self.unit.pidfile) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError) as e:
            reason = f"pidfile {self.unit.pidfile}: " + (
                e.strerror if isinstance(e, OSError) and e.strerror else "no live pid in it")
            self.last_exit = reason
            self._kill(signal.SIGKILL)
            self._after_failure(reason, ran=time.monotonic() - self.started)
            return
        self.pid = pid
        self.sup.track(pid, self)
        self.on_ready()

    def _exited(self, status: int) -> None:
        ran = time.monotonic() - self.started
        self.pid = 0
        self.last_exit = describe_status(status)
        if self.log:
            self.log.on_readable()
            self.log.flush_partial()
        logs.say(f"{self.name}: {self.last_exit} after {ran:.2f}s")
        if self.state == STOPPING:
            self._kill(signal.SIGKILL)  # whatever is left of its process group
            self._stopped()
            return
        clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and not self.timed_out
        if self.unit.type == "oneshot" and clean and self.state == STARTING:
            self._cancel_timer()
            if self.ready_after is None:
                self.ready_after = round(time.monotonic() - self.requested, 4)
            self.wanted = False
            self._set(DONE, "finished")
            return
        if clean and self.unit.restart != "always":
            self.wanted = False
            self._set(DONE, "exited cleanly")
            return
        reason = "did not become ready in time" if self.timed_out else self.last_exit
        self._after_failure(reason, ran)

    def _after_failure(self, reason: str, ran: float) -> None:
        """The process is gone (or never started): restart after a delay, or give up."""
        self._cancel_timer()
        if not self.wanted or self.unit.restart == "never":
            self.wanted = False
            self._set(FAILED, f"exited: {reason}")
            return
        # A run that stayed up for start_limit_interval was healthy: back to the first delay.
        if ran >= max(self.unit.start_limit_interval, self.unit.restart_delay_max):
            self.delay = self.unit.restart_delay
        delay = self.delay
        self.delay = min(max(self.delay * 2, 0.001), self.unit.restart_delay_max)
        # The timer first: a starting service with no timer counts as waiting to launch.
        self.timer = self.sup.loop.call_later(delay, self._relaunch)
        self._set(STARTING, f"restarting in {delay:.2f}s after {reason}")

    def _relaunch(self) -> None:
        self.timer = None
        self.launch(restart=True)

    def _start_limit_hit(self) -> None:
        cooldown = self.unit.start_limit_cooldown
        burst, interval = self.unit.start_limit_burst, self.unit.start_limit_interval
        text = f"start limit hit ({burst} starts in {interval}s)"
        if cooldown:
            at = time.strftime("%H:%M:%S", time.localtime(time.time() + cooldown))
            text += f"; retrying at {at}, or now with vigilctl start"
            self.timer = self.sup.loop.call_later(cooldown, self.on_cooldown)
        else:
            text += "; start it with vigilctl start"
        logs.error(f"{self.name}: {text}")
        self._set(FAILED, text)

    def on_cooldown(self) -> None:
        self.timer = None
        self.starts.clear()
        self.delay = self.unit.restart_delay
        self._set(STARTING, "retrying after the start limit cooldown")

    def stop(self, then_start: bool = False, why: str = "stopped") -> None:
        self.wanted = False
        self.start_again = then_start
        self.stop_reason = why
        self._cancel_timer()
        if self.state == STOPPING:
            return
        if self.pid or self.launcher:
            self._kill(self.unit.stop_signal)
            self._kill(signal.SIGCONT)  # a stopped process must wake up to see the signal
            self._set(STOPPING, f"sent {signal.Signals(self.unit.stop_signal).name}, "
                      f"SIGKILL in {self.unit.stop_timeout}s")
            self.timer = self.sup.loop.call_later(self.unit.stop_timeout, self.on_kill_timer)
        else:
            self._stopped()

    def on_kill_timer(self) -> None:
        self.timer = None
        logs.warn(f"{self.name}: still running {self.unit.stop_timeout}s after the stop "
                  "signal, sending SIGKILL")
        self._kill(signal.SIGKILL)
        self.reason = "SIGKILL sent after stop_timeout"

    def _stopped(self) -> None:
        self._cancel_timer()
        self.pid = self.launcher = 0
        if self.start_again:  # straight back to starting: dependents see no stop
            self.start_again = False
            self.state = STOPPED
            self.want()
        else:
            self._set(STOPPED, self.stop_reason)

    def _kill(self, sig: int) -> None:
        """Signal the service's process group, once; and the main pid only if it has left
        that group (a forking daemon that called setsid), never twice: a shell whose trap
        runs on each delivery would run it again."""
        targets = [-self.pgid] if self.pgid else []
        if self.pid:
            try:
                in_group = os.getpgid(self.pid) == self.pgid
            except OSError:
                in_group = False
            if not in_group:
                targets.append(self.pid)
        for target in targets:
            try:
                os.kill(target, sig)
            except OSError:
                pass
