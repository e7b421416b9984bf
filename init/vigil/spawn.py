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

    __slots__ = ("program", "argv", "env", "uid", "gid", "groups", "cwd", "umask", "tty",
                 "root", "nice", "limits")


# Where the *_directory keys make their directories, and the variable that names them.
DIRECTORIES = {"runtime_directory": ("/run", "RUNTIME_DIRECTORY"),
               "state_directory": ("/var/lib", "STATE_DIRECTORY"),
               "logs_directory": ("/var/log", "LOGS_DIRECTORY"),
               "cache_directory": ("/var/cache", "CACHE_DIRECTORY")}


def system_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every service starts from: PATH and LANG from the system (or vigil.toml)."""
    env = {"PATH": DEFAULT_PATH, "LANG": os.environ.get("LANG", "C.UTF-8")}
    if "TERM" in os.environ:
        env["TERM"] = os.environ["TERM"]
    env.update(extra or {})
    return env


def plan(unit: Unit, base_env: dict[str, str], notify_socket: str = "",
         command: Command | None = None, extra_env: dict[str, str] | None = None) -> Plan:
    """command: what to run (default the unit's exec); extra_env: MAINPID for exec_reload
    and exec_stop. A command with the + prefix runs as root, whatever user the unit has."""
    p = Plan()
    command = unit.exec if command is None else command
    user = _credentials(p, unit, privileged=command.privileged)
    home, name, shell = user
    env = dict(base_env)
    env.update(HOME=home, USER=name, LOGNAME=name, SHELL=shell)
    env.update(unit.environment)
    env.update(read_environment_files(unit.environment_file))  # files win, as in systemd
    if notify_socket:
        env["NOTIFY_SOCKET"] = notify_socket
    if unit.watchdog:
        env["WATCHDOG_USEC"] = str(int(unit.watchdog * 1_000_000))
    for key, (base, variable) in DIRECTORIES.items():
        if getattr(unit, key):
            env[variable] = ":".join(os.path.join(base, d) for d in getattr(unit, key))
    env.update(extra_env or {})
    p.env = env
    words = [command.argv0 or command.argv[0], *command.argv[1:]]
    program = command.argv[0]
    if unit.expand_environment and command.expand:
        from vigil.command import expand
        words = expand(words, env)
        program = expand([program], env)[0] if program.startswith("$") else program
    p.program, p.argv = program, words
    p.cwd = _working_dir(unit.working_dir, home)
    p.umask = unit.umask
    p.tty = unit.tty
    p.root = unit.root_directory
    p.nice = unit.nice
    p.limits = [(getattr(resource, "RLIMIT_" + n.upper()), soft, hard)
                for n, soft, hard in unit.limits]
    return p


def _credentials(p: Plan, unit: Unit, privileged: bool) -> tuple[str, str, str]:
    """uid, gid and groups into the plan; returns (home, user name, shell)."""
    import pwd
    p.uid = p.gid = None
    p.groups = None
    home, user, shell = "/root", "root", "/bin/sh"
    if unit.user is not None and not privileged:
        try:
            pw = pwd.getpwnam(unit.user) if not unit.user.isdigit() \
                else pwd.getpwuid(int(unit.user))
        except KeyError:
            raise SpawnError(f"user {unit.user!r} does not exist") from None
        p.uid, p.gid = pw.pw_uid, pw.pw_gid
        home, user, shell = pw.pw_dir, pw.pw_name, pw.pw_shell
    if unit.group is not None and not privileged:
        p.gid = _gid(unit.group)
    if p.uid is not None:
        p.groups = os.getgrouplist(user, p.gid)
    elif p.gid is not None:
        p.groups = [p.gid]
    if unit.supplementary_groups and not privileged:
        extra = [_gid(g) for g in unit.supplementary_groups]
        p.groups = sorted(set((p.groups or [p.gid if p.gid is not None else 0]) + extra))
    return home, user, shell


def _gid(group: str) -> int:
    import grp
    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise SpawnError(f"group {group!r} does not exist") from None


def _working_dir(value: str | None, home: str) -> str:
    """working_dir: a path, ~ for the user's home; with a - prefix a missing one is "/"."""
    if not value:
        return "/"
    optional = value.startswith("-")
    path = value[1:] if optional else value
    path = home if path == "~" else path
    if optional and not os.path.isdir(path):
        return "/"
    return path


def read_environment_files(files: tuple) -> dict[str, str]:
    """environment_file: (path, optional) pairs, read at each start, later files winning."""
    from vigil import envfile
    env: dict[str, str] = {}
    for path, optional in files:
        try:
            with open(path, errors="replace") as f:
                env.update(envfile.parse(f.read()))
        except FileNotFoundError:
            if not optional:
                raise SpawnError(f"environment_file {path}: No such file or directory") \
                    from None
        except OSError as e:
            raise SpawnError(f"environment_file {path}: {e.strerror}") from None
    return env


def make_directories(unit: Unit, uid: int | None, gid: int | None) -> None:
    """The runtime, state, logs and cache directories, owned by the service's user."""
    for key, (base, _variable) in DIRECTORIES.items():
        mode = getattr(unit, key + "_mode")
        for name in getattr(unit, key):
            path = os.path.join(base, name)
            try:
                os.makedirs(path, mode=mode, exist_ok=True)
                os.chmod(path, mode)
                if uid is not None or gid is not None:
                    os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
            except OSError as e:
                raise SpawnError(f"{key} {path}: {e.strerror}") from None


def remove_runtime_directories(unit: Unit) -> None:
    """After a stop: the runtime directories go (state, logs and cache stay)."""
    import shutil
    base = DIRECTORIES["runtime_directory"][0]
    for name in unit.runtime_directory:
        shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def find_program(name: str, path: str, root: str | None = None) -> str | None:
    """The file execvp would run for `name`, searched in the service's own PATH (inside
    root_directory when it has one)."""
    inside = (lambda f: os.path.join(root, f.lstrip("/"))) if root else (lambda f: f)
    if "/" in name:
        return name
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(inside(candidate)) and os.access(inside(candidate), os.X_OK):
            return candidate
    return None


def spawn(p: Plan, stdout_fd: int) -> tuple[int, int]:
    """Start the process without waiting for it. stdout_fd is where fds 1 and 2 go.

    Returns (pid, exec_fd): a pipe that, once readable, gives the exec error
    (read_exec_error) or reaches end of file when the exec succeeded. The caller watches it
    in the loop instead of blocking until the child has exec'd, so N starts cost N forks in
    the parent while the children do their part side by side.
    """
    exe = find_program(p.program, p.env.get("PATH", DEFAULT_PATH), p.root)
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
    for which, soft, hard in p.limits:
        resource.setrlimit(which, (soft, hard))
    if p.nice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, p.nice)
    os.umask(p.umask)
    if p.root:
        os.chroot(p.root)
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
