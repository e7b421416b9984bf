"""Starting a service's process: fork, set up the child exactly, exec.

Everything that can block or fail for a reason worth reporting (user and group lookup,
the environment) is resolved in the parent before fork. The child only makes syscalls:
new session, default signals, fds 0-2, rlimit, umask, cwd, groups, gid, uid, exec.
If exec fails, the child writes errno to a close-on-exec pipe so the parent can say
"exec not found" instead of seeing an anonymous exit 127.
"""

import os
import resource
import signal

from vigil import linux
from vigil.unit import Unit

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The soft fd limit services get: vigil raises its own, services keep the usual one.
CHILD_NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)


class SpawnError(Exception):
    """The process could not be started; the message says why, for `vigilctl status`."""


class Plan:
    """What the child needs, resolved in the parent."""

    __slots__ = ("argv", "env", "uid", "gid", "groups", "cwd", "umask", "tty")


def system_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every service starts from: PATH and LANG from the system (or vigil.toml)."""
    env = {"PATH": DEFAULT_PATH, "LANG": os.environ.get("LANG", "C.UTF-8")}
    if "TERM" in os.environ:
        env["TERM"] = os.environ["TERM"]
    env.update(extra or {})
    return env


def plan(unit: Unit, base_env: dict[str, str], notify_socket: str = "") -> Plan:
    import grp
    import pwd
    if unit.exec is None:   # a group, or a oneshot with no exec: nothing to spawn
        raise SpawnError(f"{unit.name} has no command to run")
    p = Plan()
    p.argv = list(unit.exec.argv)
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


def spawn(p: Plan, stdout_fd: int) -> int:
    """Fork and exec. stdout_fd is where fds 1 and 2 go. Returns the pid, or raises SpawnError."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            _child(p, stdout_fd, err_w)
        except BaseException as e:  # noqa: BLE001 - report, then exit whatever happened
            code = e.errno if isinstance(e, OSError) and e.errno else 0
            what = f"{code}:{getattr(e, 'filename', None) or ''}:{e}"
            try:
                os.write(err_w, what.encode(errors="replace")[:1000])
            except OSError:
                pass
        finally:
            os._exit(127)
    os.close(err_w)
    report = b""
    while True:
        try:
            chunk = os.read(err_r, 1024)
        except InterruptedError:
            continue
        if not chunk:
            break
        report += chunk
    os.close(err_r)
    if report:
        os.waitpid(pid, 0)  # it has exited already; reap it here
        code, filename, message = report.decode(errors="replace").split(":", 2)
        if code == "2" and (filename == p.argv[0] or "/" not in p.argv[0]):
            raise SpawnError(f"exec {p.argv[0]}: not found")
        raise SpawnError(message)
    return pid


def _child(p: Plan, stdout_fd: int, err_fd: int) -> None:
    os.setsid()
    linux.default_all_signals()
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if p.tty:
        tty = os.open(p.tty, os.O_RDWR)  # first tty a session leader opens: its ctty
        stdin = stdout = tty
    else:
        stdin = os.open("/dev/null", os.O_RDONLY)
        stdout = stdout_fd
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
    os.execvpe(p.argv[0], p.argv, p.env)
