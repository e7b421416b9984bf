"""Starting a service's process: fork, set up the child exactly, exec; never waiting.

Everything that can block or fail for a reason worth reporting (user and group lookup,
the environment, the program's path) is resolved in the parent before fork (`plan`). The
child only makes syscalls: new session, default signals, fds 0-2, rlimit, umask, cwd,
groups, gid, uid, exec. If exec fails, the child writes errno to a close-on-exec pipe that
the parent watches in its loop, so it can say "exec X: not found" instead of seeing an
anonymous exit 127, without blocking until the child has exec'd.

Why not posix_spawn, which is about twice as fast here (vfork and exec): glibc's leaves its
own signals 32 and 33 ignored in the child, and every service must start with default
dispositions (a program that ignores them by inheritance breaks in odd ways).
"""

import errno
import os
import resource
import signal

from vigil import linux
from vigil.command import Command
from vigil.unit import Unit

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The soft fd limit services get: vigil raises its own, services keep the usual one.
CHILD_NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)


class SpawnError(Exception):
    """The process could not be started; the message says why, for `vigilctl status`."""


class Plan:
    """What the child needs, resolved in the parent."""

    __slots__ = ("program", "argv", "env", "uid", "gid", "groups", "cwd", "umask", "tty")


def system_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every service starts from: PATH and LANG from the system (or vigil.toml)."""
    env = {"PATH": DEFAULT_PATH, "LANG": os.environ.get("LANG", "C.UTF-8")}
    if "TERM" in os.environ:
        env["TERM"] = os.environ["TERM"]
    env.update(extra or {})
    return env


def plan(unit: Unit, base_env: dict[str, str], notify_socket: str = "",
         command: Command | None = None) -> Plan:
    """command: what to run (default the unit's exec)."""
    import grp
    import pwd
    p = Plan()
    command = unit.exec if command is None else command
    p.program = command.argv[0]
    p.argv = [command.argv0 or command.argv[0], *command.argv[1:]]
    p.uid = p.gid = None
    p.groups = None
    home, user, shell = "/root", "root", "/bin/sh"
    if unit.user is not None:
        try:
            pw = pwd.getpwnam(unit.user) if not unit.user.isdigit() \
                else pwd.getpwuid(int(unit.user))
        except KeyError:
            raise SpawnError(f"user {unit.user!r} does not exist") from None
        p.uid, p.gid = pw.pw_uid, pw.pw_gid
        home, user, shell = pw.pw_dir, pw.pw_name, pw.pw_shell
    if unit.group is not None:
        try:
            p.gid = grp.getgrnam(unit.group).gr_gid if not unit.group.isdigit() \
                else int(unit.group)
        except KeyError:
            raise SpawnError(f"group {unit.group!r} does not exist") from None
    if p.uid is not None:
        p.groups = os.getgrouplist(user, p.gid)
    elif p.gid is not None:
        p.groups = [p.gid]
    env = dict(base_env)
    env.update(HOME=home, USER=user, LOGNAME=user, SHELL=shell)
    env.update(unit.environment)
    if notify_socket:
        env["NOTIFY_SOCKET"] = notify_socket
    p.env = env
    p.cwd = unit.working_dir or "/"
    p.umask = unit.umask
    p.tty = unit.tty
    return p


def find_program(name: str, path: str) -> str | None:
    """The file execvp would run for `name`, searched in the service's own PATH."""
    if "/" in name:
        return name
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def spawn(p: Plan, stdout_fd: int) -> tuple[int, int]:
    """Start the process without waiting for it. stdout_fd is where fds 1 and 2 go.

    Returns (pid, exec_fd): a pipe that, once readable, gives the exec error
    (read_exec_error) or reaches end of file when the exec succeeded. The caller watches it
    in the loop instead of blocking until the child has exec'd, so N starts cost N forks in
    the parent while the children do their part side by side.
    """
    exe = find_program(p.program, p.env.get("PATH", DEFAULT_PATH))
    if exe is None:
        raise SpawnError(f"exec {p.program}: not found")
    return _fork(p, exe, stdout_fd)


class _Once:
    """What every child needs, worked out once in the parent: the signals vigil ignores
    (Python ignores SIGPIPE and SIGXFSZ; a parent may have left more) and /dev/null."""

    ignored: list[int] | None = None
    null = -1

    @classmethod
    def get(cls) -> "type[_Once]":
        if cls.ignored is None:
            cls.ignored = linux.ignored_signals()
            cls.null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        return cls


def _fork(p: Plan, exe: str, stdout_fd: int) -> tuple[int, int]:
    once = _Once.get()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            _child(p, exe, stdout_fd, err_w, once)
        except BaseException as e:  # noqa: BLE001 - report, then exit whatever happened
            code = e.errno if isinstance(e, OSError) and e.errno else 0
            reason = (e.strerror if isinstance(e, OSError) else "") or str(e)
            what = f"{code}:{getattr(e, 'filename', None) or ''}:{reason}"
            try:
                os.write(err_w, what.encode(errors="replace")[:1000])
            except OSError:
                pass
        finally:
            os._exit(127)
    os.close(err_w)
    os.set_blocking(err_r, False)
    return pid, err_r


def read_exec_error(exec_fd: int, argv0: str) -> str | None:
    """Once exec_fd is readable: "" if the exec succeeded, the error if it did not, None
    if there is nothing yet. The caller closes the fd once there is an answer."""
    try:
        report = os.read(exec_fd, 1024)
    except BlockingIOError:
        return None
    if not report:
        return ""
    code, filename, message = report.decode(errors="replace").split(":", 2)
    return _exec_failure(int(code or 0), filename, message, argv0)


def _exec_failure(code: int, filename: str, message: str, argv0: str) -> str:
    """As `vigilctl status` says it: "exec X: not found", "exec X: Permission denied",
    "/srv/web: No such file or directory" (a working_dir), or the message alone."""
    if code == errno.ENOENT and (filename == argv0 or "/" not in argv0 or not filename):
        return f"exec {argv0}: not found"
    if filename == argv0 or (filename and os.path.basename(filename) == argv0):
        return f"exec {argv0}: {message}"
    return f"{filename}: {message}" if filename else message


def _child(p: Plan, exe: str, stdout_fd: int, err_fd: int, once: type[_Once]) -> None:
    os.setsid()
    linux.default_signals(once.ignored)  # handled ones become default at exec by themselves
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if p.tty:
        tty = os.open(p.tty, os.O_RDWR)  # first tty a session leader opens: its ctty
        stdin = stdout = tty
    else:
        stdin, stdout = once.null, stdout_fd
    os.dup2(stdin, 0)
    os.dup2(stdout, 1)
    os.dup2(stdout, 2)
    os.closerange(3, err_fd)
    os.closerange(err_fd + 1, os.sysconf("SC_OPEN_MAX"))
    resource.setrlimit(resource.RLIMIT_NOFILE, CHILD_NOFILE)
    os.umask(p.umask)
    os.chdir(p.cwd)
    if p.groups is not None and os.getuid() == 0:
        os.setgroups(p.groups)
    if p.gid is not None:
        os.setgid(p.gid)
    if p.uid is not None:
        os.setuid(p.uid)
    os.execve(exe, p.argv, p.env)


def signal_service(pgid: int, pid: int, sig: int) -> None:
    """Signal a service's process group, once; and its main pid only if it has left that
    group (a forking daemon that called setsid), never twice: a shell whose trap runs on
    each delivery would run it again."""
    targets = [-pgid] if pgid else []
    if pid:
        try:
            in_group = os.getpgid(pid) == pgid
        except OSError:
            in_group = False
        if not in_group:
            targets.append(pid)
    for target in targets:
        try:
            os.kill(target, sig)
        except OSError:
            pass
