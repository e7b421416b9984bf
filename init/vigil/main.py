"""vigil: stage 1 (boot, only as the machine's PID 1), stage 2 (supervise), stage 3 (stop).

    vigil [--units DIR]... [--log-dir DIR] [--control PATH] [--boot | --no-boot]

As PID 1 of a machine it mounts the kernel's file systems and starts a getty on each
console= of the kernel command line. Anywhere else (a PID namespace, a container, a
user's session) it skips that, and when not PID 1 it becomes a child subreaper so
orphans of its services are still reaped by it. A poweroff ends in reboot(2) as PID 1
and in exit(0) otherwise.
"""

import os
import resource
import signal
import sys
import time

from vigil import VERSION, linux, logs, reexec, spawn
from vigil.boot import problem_table
from vigil.control import ControlServer
from vigil.loop import Loop
from vigil.supervisor import Supervisor
from vigil.unit import RUNTIME_UNITS, UNIT_DIRS
from vigil.verbs import Verbs

USAGE = """usage: vigil [--units DIR]... [--import-root DIR] [--log-dir DIR] [--control PATH]
             [--boot|--no-boot]
  --units DIR     a unit directory (repeatable; later ones override earlier ones by name;
                  default /usr/lib/vigil/units, /run/vigil/units, /etc/vigil/units)
  --import-root DIR  import the systemd units, init.d scripts and inittab found under DIR
                  (default /, and none when --units is given)
  --log-dir DIR   where service logs go (default /var/log/vigil)
  --control PATH  the control socket (default /run/vigil/control)
  --boot          do stage 1 (mounts, console, gettys) even if not the machine's PID 1
  --no-boot       skip stage 1 even as PID 1
"""

ROOT_PID_NS_INODE = 0xEFFFFFFC  # the kernel's initial PID namespace (PROC_PID_INIT_INO)
STOP_GRACE = 3.0                # seconds between SIGTERM and SIGKILL to what is left at the end
SHUTDOWN_TIMEOUT = 120.0        # stage 3 goes on after this even if services are still stopping

# Signals vigil handles (all through the signalfd).
SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
           signal.SIGUSR2, signal.SIGPWR, signal.SIGRTMIN + 3, signal.SIGRTMIN + 4,
           signal.SIGRTMIN + 5}
REBOOT_CMDS = {"poweroff": linux.RB_POWER_OFF, "reboot": linux.RB_AUTOBOOT,
               "halt": linux.RB_HALT_SYSTEM}


def parse_args(argv: list[str]) -> dict:
    opts = {"units": [], "log_dir": "/var/log/vigil", "control": "/run/vigil/control",
            "boot": None, "resume": -1, "import_root": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            print(USAGE, end="")
            sys.exit(0)
        if arg == "--version":
            print(f"vigil {VERSION}")
            sys.exit(0)
        if arg in ("--boot", "--no-boot"):
            opts["boot"] = arg == "--boot"
        elif arg == "--resume" and i + 1 < len(argv) and argv[i + 1].isdigit():
            i += 1
            opts["resume"] = int(argv[i])  # the state fd of the vigil that re-exec'd us
        elif arg in ("--units", "--log-dir", "--control", "--import-root") \
                and i + 1 < len(argv):
            i += 1
            if arg == "--units":
                opts["units"].append(argv[i])
            else:
                opts[arg[2:].replace("-", "_")] = argv[i]
        elif os.getpid() == 1:
            pass  # the kernel passes unknown words of its command line to init: ignore
        else:
            sys.stderr.write(f"vigil: unknown argument {arg!r}\n{USAGE}")
            sys.exit(2)
        i += 1
    if not opts["units"] and opts["import_root"] is None:
        opts["import_root"] = "/"   # the machine's own units; a test or session gives --units
    opts["units"] = opts["units"] or list(UNIT_DIRS)
    return opts


def is_machine_init() -> bool:
    """PID 1 of the machine, not of a PID namespace (where /proc is already mounted)."""
    if os.getpid() != 1:
        return False
    try:
        return os.stat("/proc/self/ns/pid").st_ino == ROOT_PID_NS_INODE
    except OSError:
        return True  # no /proc yet: only the real PID 1 starts that early


class Init:
    def __init__(self, opts: dict):
        self.opts = opts
        self.pid1 = os.getpid() == 1
        self.machine = opts["boot"] if opts["boot"] is not None else is_machine_init()
        self.action = ""             # poweroff | reboot | halt, once stage 3 has begun
        self.started = time.time()
        self.loop = Loop(on_error=lambda what, e: logs.error(f"error in {what}: {e!r}"))
        self.sup: Supervisor | None = None
        self.final_timer = None
        self.scheduled: dict | None = None   # a shutdown(8) waiting for its time
        self.schedule_timers: list = []
        self.control: ControlServer | None = None
        self.reexecs = 0
        self.only: list[str] | None = None   # rescue mode or vigil.unit=: start just these
        self.shutdown_timeout = SHUTDOWN_TIMEOUT
        self.actions = {"sigterm": "poweroff", "ctrl_alt_del": "reboot",
                        "power_failure": "poweroff"}

    # --- stage 1 ---------------------------------------------------------------
    def stage1(self) -> list[str]:
        """Boot steps of the machine's PID 1. Returns the extra units to start (gettys)."""
        from vigil.boot import cmdline, early
        problems = [f"system: {p}" for p in early.mount_essentials()]
        early.console_on_stdio()
        logs.use_kmsg()
        try:
            linux.reboot(linux.RB_DISABLE_CAD)  # Ctrl-Alt-Del becomes SIGINT to us
        except OSError as e:
            logs.warn(f"cannot disable Ctrl-Alt-Del: {e}")
        cmd = cmdline.read()
        logs.DEBUG = cmd.has("vigil.debug")
        from vigil.boot import initrd
        initrd.switch_root(cmd, problems)  # in an initramfs with root=: execs the real init
        from vigil import child
        try:  # modules, fstab, swap, settings, udev units: in a child, see vigil.child
            more, self.boot_env, init_settings = child.run(_bring_up, cmd.text)
            self.shutdown_timeout = init_settings["shutdown_timeout"]
            self.actions = init_settings["actions"]
        except child.ChildFailed as e:
            more = [f"system: the boot steps failed: {e}"]
            logs.error(more[0])
        problems += more
        try:
            from vigil import utmp
            utmp.write_boot()  # after fstab: wtmp needs / read-write
        except OSError as e:
            problems.append(f"system: utmp/wtmp boot record: {e}")
        self.boot_problems = problems
        if cmd.get("vigil.unit"):
            self.only = cmd.values["vigil.unit"]  # that unit and what it pulls in, no getty
            return []
        if rescue_mode(cmd, sys.argv[1:]):
            logs.say("rescue mode: only the units marked rescue, and a root shell")
            self.only = ["rescue"] + [n for n, u in child.run(_rescue_units).items() if u]
            return []
        gettys = [f"getty@{tty}" for tty, _baud in cmd.consoles()]
        if os.path.exists("/sys/class/tty/tty1") and "getty@tty1" not in gettys:
            gettys.append("getty@tty1")
        return gettys

    # --- stage 2 ---------------------------------------------------------------
    def setup(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        _ensure_stdio()
        _raise_fd_limit()
        self.boot_problems: list[str] = []
        self.boot_env: dict[str, str] = {}
        resumed = reexec.load(self.opts["resume"]) if self.opts["resume"] >= 0 else None
        extra = self.stage1() if self.machine and not resumed else []
        if not self.pid1:
            linux.set_child_subreaper()
        sfd = linux.signalfd(SIGNALS)
        self.loop.add(sfd, lambda _mask: self.on_signals(linux.read_signals(sfd)))
        runtime_dir = os.path.dirname(self.opts["control"])
        self.sup = Supervisor(self.loop, self.opts["units"], self.opts["log_dir"], runtime_dir,
                              spawn.system_environment(self.boot_env), self.opts["import_root"])
        self.sup.problems.update(problem_table(self.boot_problems))
        try:
            self.control = ControlServer(self.loop, self.opts["control"],
                                         Verbs(self.sup, self, self.started),
                                         fd=resumed["control_fd"] if resumed else -1)
        except OSError as e:  # vigil still supervises without its socket
            logs.error(f"control socket {self.opts['control']}: {e}")
        logs.say(f"vigil {VERSION} starting as pid {os.getpid()}"
                 + (" (machine init)" if self.machine else ""))
        self.sup.load()
        if resumed:
            reexec.restore(self, resumed)
            return
        self.sup.boot(extra, self.only)
        logs.say(f"started: {self.sup.state_line()}")

    def reexec(self) -> None:
        """Exec the (possibly upgraded) vigil program in place, once the reply is sent."""
        if self.action:
            raise OSError("already shutting down")
        self.loop.call_later(0, lambda: reexec.execute(self))

    def serve(self) -> None:
        """The loop, forever. As PID 1 even an unexpected error only costs one iteration."""
        while True:
            try:
                self.loop.run_once()
            except SystemExit:
                raise
            except BaseException as e:  # noqa: BLE001
                if not self.pid1:
                    raise
                logs.error(f"error in the loop, going on: {e!r}")

    def on_signals(self, received: list[tuple[int, int]]) -> None:
        for signo, _sender in received:
            if signo == signal.SIGCHLD:
                self.sup.reap()
                if self.final_timer is not None:
                    self._final_check()
            elif signo in (signal.SIGHUP, signal.SIGUSR1):
                self.sup.reload()
            elif signo == signal.SIGUSR2:
                logs.say(f"state: {self.sup.state_line()}; tracked pids {sorted(self.sup.pids)}")
                for name, svc in sorted(self.sup.services.items()):
                    logs.say(f"  {name}: {svc.state} pid={svc.pid} {svc.reason}")
            elif signo == signal.SIGINT:
                self.on_power_signal("ctrl_alt_del" if self.pid1 else "sigterm")
            elif signo == signal.SIGTERM:
                self.on_power_signal("sigterm")
            elif signo == signal.SIGPWR:
                self.on_power_signal("power_failure")
            elif signo == signal.SIGRTMIN + 4:
                self.power("poweroff")
            elif signo == signal.SIGRTMIN + 3:
                self.power("halt")
            elif signo == signal.SIGRTMIN + 5:
                self.power("reboot")

    def on_power_signal(self, which: str) -> None:
        """SIGTERM, Ctrl-Alt-Del, SIGPWR: what vigil.toml's [shutdown] says (or the default)."""
        action = self.actions[which]
        if action == "ignore":
            logs.say(f"{which}: ignored, as vigil.toml says")
        else:
            self.power(action)

    # --- stage 3 ---------------------------------------------------------------
    def schedule(self, action: str, when: float, wall: bool, message: str) -> None:
        """shutdown +M: warn now and at 15, 5 and 1 minute(s) before, then go down."""
        self.cancel(quiet=True)
        self.scheduled = {"action": action, "when": when, "message": message, "wall": wall}
        left = when - time.time()
        logs.say(f"{action} scheduled in {max(0, left):.0f}s {message}".rstrip())
        for before in (None, 900, 300, 60):
            if before is None or before < left:
                delay = 0 if before is None else left - before
                self.schedule_timers.append(self.loop.call_later(
                    delay, lambda b=before or left: self._warn(f"in {round(b / 60)} minute(s)")))
        self.schedule_timers.append(self.loop.call_later(
            max(0, left), lambda: self.power(action, wall)))

    def _warn(self, when: str) -> None:
        s = self.scheduled
        if s and s["wall"]:
            self.wall(f"The system is going down for {s['action']} {when}!\n{s['message']}")

    def cancel(self, quiet: bool = False) -> None:
        for timer in self.schedule_timers:
            timer.cancel()
        self.schedule_timers = []
        if self.scheduled and not quiet:
            logs.say(f"scheduled {self.scheduled['action']} cancelled")
            if self.scheduled["wall"]:
                self.wall("The system shutdown has been cancelled.")
        self.scheduled = None

    def wall(self, message: str) -> None:
        """Only the machine's init writes to users' terminals (never a test's namespace)."""
        if self.machine:
            from vigil import utmp
            utmp.wall(message)

    def power(self, action: str, wall: bool = True) -> None:
        if self.action:
            return  # already going down
        self.cancel(quiet=True)
        if wall:
            self.wall(f"The system is going down for {action} NOW!")
        self.action = action
        logs.say(f"{action}: stopping services")
        self.stage3_began = time.monotonic()
        self.shutdown_timer = self.loop.call_later(self.shutdown_timeout, self._shutdown_late)
        self.sup.shutdown(self._services_stopped)

    def _shutdown_late(self) -> None:
        """The overall limit: go on with stage 3 whatever is still stopping."""
        late = sorted(n for n, s in self.sup.services.items() if s.up)
        logs.error(f"{self.action}: still stopping after {self.shutdown_timeout}s: "
                   f"{', '.join(late)}; going on")
        self.sup.on_all_stopped = None
        self._services_stopped()

    def _services_stopped(self) -> None:
        self.shutdown_timer.cancel()
        logs.say(f"{self.action}: services stopped in "
                 f"{time.monotonic() - self.stage3_began:.2f}s")
        if not self.pid1:
            self._finish()
            return
        # PID 1: everything else in our PID namespace goes too.
        try:
            os.kill(-1, signal.SIGTERM)
            os.kill(-1, signal.SIGCONT)
        except OSError:
            pass
        self.final_timer = self.loop.call_later(STOP_GRACE, self._kill_rest)
        self._final_check()

    def _final_check(self) -> None:
        """Finish as soon as no process is left (SIGCHLD brings us here)."""
        self.sup.reap()
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            self.final_timer.cancel()
            self._finish()

    def _kill_rest(self) -> None:
        logs.warn(f"{self.action}: killing processes left after {STOP_GRACE}s")
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        self.final_timer = self.loop.call_later(STOP_GRACE, self._finish)

    def _finish(self) -> None:
        if self.machine:
            from vigil.shutdown import Stage3
            Stage3(self.stage3_began, self.action).run()
        else:
            os.sync()
        logs.say(f"{self.action}: done after {time.monotonic() - self.stage3_began:.2f}s")
        if not self.pid1:
            sys.exit(0)
        try:
            linux.reboot(REBOOT_CMDS[self.action])
        except OSError as e:
            logs.error(f"reboot(2): {e}")
        while True:  # PID 1 must never return
            signal.pause()


def _bring_up(cmdline_text: str) -> tuple[list[str], dict[str, str]]:
    """Stage 1's boot steps (run in a child): (problems, services' environment, PID 1's
    settings from vigil.toml)."""
    from vigil.boot import settings, system
    from vigil.boot.cmdline import Cmdline
    problems, env = system.bring_up(Cmdline(cmdline_text))
    _generate_units()
    config, _problems = settings.load_config()  # its problems are in `problems` already
    return problems, env, {"shutdown_timeout": config.shutdown_timeout,
                           "actions": config.actions}


def _generate_units() -> None:
    """Units that depend on what this machine has (udev) go to /run/vigil/units."""
    from vigil.boot import udev
    found = udev.find()
    if found is None:
        logs.warn("no udev found: devtmpfs and vigil's own coldplug only")
        return
    try:
        os.makedirs(RUNTIME_UNITS, exist_ok=True)
        for name, text in udev.units(*found).items():
            with open(os.path.join(RUNTIME_UNITS, name + ".toml"), "w") as f:
                f.write(text)
    except OSError as e:
        logs.error(f"cannot write the udev units to {RUNTIME_UNITS}: {e}")


def rescue_mode(cmd, init_args: list[str]) -> bool:
    """single, rescue, S or 1 on the kernel command line (or passed to init), as sysvinit."""
    words = set(init_args) | set(cmd.init_args) | set(cmd.values)
    return bool(words & {"single", "rescue", "S", "s", "1", "-s", "emergency"})


def _rescue_units() -> dict[str, bool]:
    from vigil.unit import UNIT_DIRS, Catalog
    return {n: u.rescue for n, u in Catalog(UNIT_DIRS).units.items()}


def _ensure_stdio() -> None:
    """Services' fds must not land on 0-2 if vigil was started with them closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open("/dev/null", os.O_RDWR)


def _raise_fd_limit() -> None:
    """Every service holds a log pipe in vigil: raise our own fd limit (not the services')."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    spawn.CHILD_NOFILE = (soft, hard)
    target = max(hard, 65536) if os.geteuid() == 0 else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def main() -> int:
    init = Init(parse_args(sys.argv[1:]))
    try:
        init.setup()
    except Exception as e:  # noqa: BLE001
        if not init.pid1 or init.sup is None:
            raise
        logs.error(f"error while starting, supervising what there is: {e!r}")
    init.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
