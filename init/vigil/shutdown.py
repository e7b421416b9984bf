"""Going down: poweroff, reboot or halt, now or at a time (shutdown +M), and stage 3.

The sequence (`Shutdown.power`), each step logged on the console with its time:
  1. every unit stopped in reverse dependency order (Supervisor.shutdown), bounded by an
     overall timeout (vigil.toml [shutdown] timeout) after which it goes on regardless;
  2. as PID 1: SIGTERM and SIGCONT to every process left, STOP_GRACE seconds, SIGKILL,
     reaping all (a SIGCHLD brings `after_reap`, which finishes once none is left);
  3. on a machine (`Stage3`): random seed, utmp/wtmp, swapoff, sync, unmount in reverse
     order, / read-only, sync;
  4. reboot(2) as PID 1, exit(0) otherwise.
A step that fails is logged and the sequence goes on: the machine must always go down.

A scheduled shutdown (`Shutdown.schedule`) is a timer in PID 1 with wall messages now and
15, 5 and 1 minute(s) before, as shutdown(8) gives them.
"""

import errno
import os
import signal
import sys
import time

from vigil import linux, logs, utmp
from vigil.boot import seed
from vigil.boot.mounts import active_swaps, unescape
from vigil.files import read_text

STOP_GRACE = 3.0                # seconds between SIGTERM and SIGKILL to what is left at the end
SHUTDOWN_TIMEOUT = 120.0        # stage 3 goes on after this even if services are still stopping
WARN_BEFORE = (900, 300, 60)    # seconds before a scheduled shutdown when users are warned
# Kernel file systems that stay until the end (and are needed for the console).
KEEP_MOUNTED = ("/", "/proc", "/sys", "/dev")


class Shutdown:
    def __init__(self, loop, sup, pid1: bool, machine: bool):
        self.loop, self.sup = loop, sup
        self.pid1, self.machine = pid1, machine
        self.timeout = SHUTDOWN_TIMEOUT
        self.action = ""             # poweroff | reboot | halt, once going down
        self.began = 0.0
        self.scheduled: dict | None = None   # a shutdown(8) waiting for its time
        self._schedule_timers: list = []
        self._limit_timer = None
        self._final_timer = None

    # --- at a time ---------------------------------------------------------------
    def schedule(self, action: str, when: float, wall: bool, message: str) -> None:
        """shutdown +M: warn now and at 15, 5 and 1 minute(s) before, then go down."""
        self.cancel(quiet=True)
        self.scheduled = {"action": action, "when": when, "message": message, "wall": wall}
        left = when - time.time()
        logs.say(f"{action} scheduled in {max(0, left):.0f}s {message}".rstrip())
        self._warn(left)
        for before in WARN_BEFORE:
            if before < left:
                self._schedule_timers.append(self.loop.call_later(
                    left - before, lambda b=before: self._warn(b)))
        self._schedule_timers.append(self.loop.call_later(
            max(0, left), lambda: self.power(action, wall)))

    def _warn(self, seconds_left: float) -> None:
        s = self.scheduled
        if s and s["wall"]:
            self.wall(f"The system is going down for {s['action']} in "
                      f"{round(seconds_left / 60)} minute(s)!\n{s['message']}")

    def cancel(self, quiet: bool = False) -> None:
        for timer in self._schedule_timers:
            timer.cancel()
        self._schedule_timers = []
        if self.scheduled and not quiet:
            logs.say(f"scheduled {self.scheduled['action']} cancelled")
            if self.scheduled["wall"]:
                self.wall("The system shutdown has been cancelled.")
        self.scheduled = None

    def wall(self, message: str) -> None:
        """Only the machine's init writes to users' terminals (never a test's namespace)."""
        if self.machine:
            utmp.wall(message)

    # --- now ---------------------------------------------------------------------
    def power(self, action: str, wall: bool = True) -> None:
        if self.action:
            return  # already going down
        self.cancel(quiet=True)
        if wall:
            self.wall(f"The system is going down for {action} NOW!")
        self.action = action
        # On the next turn of the loop: a `vigilctl poweroff` is answered first, even when
        # nothing is left to stop and the end comes at once.
        self.loop.call_later(0, self._stop_services)

    def _stop_services(self) -> None:
        logs.say(f"{self.action}: stopping services")
        self.began = time.monotonic()
        self._limit_timer = self.loop.call_later(self.timeout, self._late)
        self.sup.shutdown(self._services_stopped)

    def _late(self) -> None:
        """The overall limit: go on with stage 3 whatever is still stopping."""
        late = sorted(n for n, s in self.sup.services.items() if s.up)
        logs.error(f"{self.action}: still stopping after {self.timeout}s: "
                   f"{', '.join(late)}; going on")
        self.sup.on_all_stopped = None
        self._services_stopped()

    def _services_stopped(self) -> None:
        self._limit_timer.cancel()
        logs.say(f"{self.action}: services stopped in {time.monotonic() - self.began:.2f}s")
        if not self.pid1:
            self._finish()
            return
        # PID 1: everything else in our PID namespace goes too.
        try:
            os.kill(-1, signal.SIGTERM)
            os.kill(-1, signal.SIGCONT)
        except OSError:
            pass
        self._final_timer = self.loop.call_later(STOP_GRACE, self._kill_rest)
        self.after_reap()

    def after_reap(self) -> None:
        """Finish as soon as no process is left (each SIGCHLD brings us here)."""
        if self._final_timer is None:
            return
        self.sup.reap()
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            self._final_timer.cancel()
            self._finish()

    def _kill_rest(self) -> None:
        logs.warn(f"{self.action}: killing processes left after {STOP_GRACE}s")
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        self._final_timer = self.loop.call_later(STOP_GRACE, self._finish)

    def _finish(self) -> None:
        self._final_timer = None
        for svc in self.sup.services.values():  # an open log file keeps / read-write
            if svc.log is not None:
                svc.log.release()
        if self.machine:
            Stage3(self.began, self.action).run()
        else:
            os.sync()
        logs.say(f"{self.action}: done after {time.monotonic() - self.began:.2f}s")
        if not self.pid1:
            sys.exit(0)
        try:
            linux.reboot(linux.REBOOT_COMMANDS[self.action])
        except OSError as e:
            logs.error(f"reboot(2): {e}")
        while True:  # PID 1 must never return
            signal.pause()


# --- on a machine, after the processes ------------------------------------------------

def unmount_order(mounts_text: str) -> list[str]:
    """Mount points to unmount, the last mounted first; the kernel's own file systems stay."""
    targets = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        target = unescape(fields[1])
        if any(target == k or (k != "/" and target.startswith(k + "/")) for k in KEEP_MOUNTED):
            continue
        targets.append(target)
    return list(reversed(targets))


class Stage3:
    def __init__(self, began: float, action: str):
        self.began, self.action = began, action

    def step(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
            logs.say(f"[{time.monotonic() - self.began:6.2f}s] {what}")
        except OSError as e:
            logs.error(f"[{time.monotonic() - self.began:6.2f}s] {what}: {e.strerror or e}")

    def run(self) -> None:
        self.step("saved the random seed", seed.save)
        self.step("utmp/wtmp shutdown record", utmp.write_shutdown,
                  "6" if self.action == "reboot" else "0")
        for swap in sorted(active_swaps(read_text("/proc/swaps"))):
            self.step(f"swapoff {swap}", linux.swapoff, swap)
        self.step("sync", os.sync)
        for target in unmount_order(read_text("/proc/self/mounts")):
            self.step(f"unmount {target}", unmount, target)
        self.step("remount / read-only", linux.mount, "", "/", None,
                  linux.MS_REMOUNT | linux.MS_RDONLY)
        self.step("sync", os.sync)


def unmount(target: str) -> None:
    """Unmount; a busy file system is made read-only and detached instead."""
    try:
        linux.umount(target)
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise
        try:
            linux.mount("", target, None, linux.MS_REMOUNT | linux.MS_RDONLY)
        finally:
            linux.umount(target, linux.MNT_DETACH)
