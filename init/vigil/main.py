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
from vigil.shutdown import SHUTDOWN_TIMEOUT, Shutdown
from vigil.supervisor import Supervisor
from vigil.unit import UNIT_DIRS
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
  --mount TARGET  (what a generated mount unit runs) wait for TARGET's fstab device and
                  mount it
  --swap SPEC     (what a generated swap unit runs) wait for that fstab swap device and
                  turn it on
"""

ROOT_PID_NS_INODE = 0xEFFFFFFC  # the kernel's initial PID namespace (PROC_PID_INIT_INO)

# Signals vigil handles (all through the signalfd).
SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
           signal.SIGUSR2, signal.SIGPWR, signal.SIGRTMIN + 3, signal.SIGRTMIN + 4,
           signal.SIGRTMIN + 5}
# Signals whose action vigil.toml's [shutdown] may change, and the real-time ones of systemd.
POWER_SIGNALS = {signal.SIGTERM: "sigterm", signal.SIGINT: "ctrl_alt_del",
                 signal.SIGPWR: "power_failure"}
RT_POWER_SIGNALS = {signal.SIGRTMIN + 3: "halt", signal.SIGRTMIN + 4: "poweroff",
                    signal.SIGRTMIN + 5: "reboot"}


def parse_args(argv: list[str]) -> dict:
    opts = {"units": [], "log_dir": "/var/log/vigil", "control": "/run/vigil/control",
            "boot": None, "resume": -1, "import_root": None, "mount": None,
            "swap": None}
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
        elif arg in ("--units", "--log-dir", "--control", "--import-root", "--mount",
                     "--swap") \
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
    """The loop's wiring: signals, the control socket, the supervisor, the way down."""

    def __init__(self, opts: dict):
        self.opts = opts
        self.pid1 = os.getpid() == 1
        self.machine = opts["boot"] if opts["boot"] is not None else is_machine_init()
        self.started = time.time()
        self.loop = Loop(on_error=logs.exception)  # with the traceback
        self.sup: Supervisor | None = None
        self.down: Shutdown | None = None
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
        from vigil.boot import system
        try:  # modules, fstab, swap, settings, generated units: in a child, see vigil.child
            booted = system.BootResult.from_json(child.run(system.bring_up_in_child, cmd.text))
        except (child.ChildFailed, ValueError) as e:
            problems.append(f"system: the boot steps failed: {e}")
            logs.error(problems[-1])
        else:
            problems += booted.problems
            self.boot_steps = booted.steps
            self.boot_env = booted.environment
            self.shutdown_timeout, self.actions = booted.shutdown_timeout, booted.actions
        try:
            from vigil import utmp
            utmp.write_boot()  # after fstab: wtmp needs / read-write
        except OSError as e:
            problems.append(f"system: utmp/wtmp boot record: {e}")
        self.boot_problems = problems
        if cmd.get("vigil.unit"):
            self.only = cmd.values["vigil.unit"]  # that unit and what it pulls in, no getty
            return []
        if system.rescue_mode(cmd, sys.argv[1:]):
            logs.say("rescue mode: only the units marked rescue, and a root shell")
            self.only = ["rescue"] + [n for n, u in child.run(system.rescue_units).items() if u]
            return []
        return system.gettys(cmd, os.path.exists("/sys/class/tty/tty1"))

    # --- stage 2 ---------------------------------------------------------------
    def setup(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        _ensure_stdio()
        _raise_fd_limit()
        self.boot_problems: list[str] = []
        self.boot_steps: list[list] = []   # stage 1's [name, start, end], for analyze
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
        self.down = Shutdown(self.loop, self.sup, self.pid1, self.machine)
        self.down.timeout = self.shutdown_timeout
        try:
            self.control = ControlServer(self.loop, self.opts["control"],
                                         Verbs(self.sup, self, self.started),
                                         fd=resumed["control_fd"] if resumed else -1)
        except OSError as e:  # vigil still supervises without its socket
            logs.error(f"control socket {self.opts['control']}: {e}")
        if self.machine:  # the installed init's poweroff, reboot, shutdown, telinit
            from vigil import initctl
            try:
                initctl.Channel(self.loop, self.on_initctl)
            except OSError as e:
                logs.error(f"{initctl.PATH}: {e}")
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
        if self.down.action:
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
                self.down.after_reap()
            elif signo in (signal.SIGHUP, signal.SIGUSR1):
                self.sup.reload()
            elif signo == signal.SIGUSR2:
                logs.say(f"state: {self.sup.state_line()}; tracked pids {sorted(self.sup.pids)}")
                for name, svc in sorted(self.sup.services.items()):
                    logs.say(f"  {name}: {svc.state} pid={svc.pid} {svc.why.text()}")
            elif signo in POWER_SIGNALS:
                self.on_power_signal(POWER_SIGNALS[signo])
            elif signo in RT_POWER_SIGNALS:
                self.down.power(RT_POWER_SIGNALS[signo])

    def on_initctl(self, action: str) -> None:
        """A request on /run/initctl (vigil.initctl), from sysvinit's or systemd's tools."""
        if action in ("poweroff", "reboot", "halt"):
            self.down.power(action)
        elif action == "power-failure":
            self.on_power_signal("power_failure")
        elif action == "reload":
            self.sup.reload()
        elif action == "rescue":
            self.sup.rescue()
        elif action == "default":
            self.sup.resume_default()
        elif action == "reexec":
            self.reexec()

    def on_power_signal(self, which: str) -> None:
        """SIGTERM, Ctrl-Alt-Del, SIGPWR: what vigil.toml's [shutdown] says (or the default)."""
        if which == "ctrl_alt_del" and not self.pid1:
            which = "sigterm"  # SIGINT is Ctrl-Alt-Del only from the kernel, to PID 1
        action = self.actions[which]
        if action == "ignore":
            logs.say(f"{which}: ignored, as vigil.toml says")
        else:
            self.down.power(action)


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
    opts = parse_args(sys.argv[1:])
    if opts["mount"] or opts["swap"]:  # what a unit of boot.fstab.mount_units runs
        from vigil.boot import system
        return system.mount_later(opts["mount"]) if opts["mount"] \
            else system.swap_later(opts["swap"])
    init = Init(opts)
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
