"""The initramfs stage: mount `root=`, make it /, and exec its init.

Stage 1 calls `switch_root(cmd, problems)` right after the kernel's file systems are
mounted. It does nothing (returns) unless vigil runs from an initramfs (/ is rootfs or
tmpfs) and the command line names a root=. Otherwise, as switch_root(8) does:

  1. load the modules the root device needs (/etc/vigil/initrd-modules, written by the
     initramfs builder), with vigil's own modprobe (vigil.boot.modules);
  2. wait for the device (root=/dev/X, UUID=, LABEL=, PARTUUID=, MAJ:MIN), up to 30 s;
  3. mount it on /newroot (rootfstype=, rootflags=, ro/rw; read-only unless `rw`, as on
     Debian, so the real init can check it before remounting it);
  4. move /dev, /proc, /sys and /run into it, delete the initramfs's files (they would
     otherwise hold memory for ever), move /newroot onto / and chroot into it;
  5. exec init= (default /sbin/vigil) with our own arguments (the kernel's words for
     init), fds 0-2 on the console and nothing else open.

Only when the root cannot be mounted at all is there a shell on the console (the initramfs
has one); when it exits, vigil goes on supervising the initramfs.
"""

import os
import signal
import sys
import time
from collections.abc import Callable

from vigil import linux, logs
from vigil.boot import mounts
from vigil.boot.cmdline import Cmdline
from vigil.files import read_text

NEWROOT = "/newroot"
MODULE_LIST = "/etc/vigil/initrd-modules"
DEFAULT_INIT = "/sbin/vigil"
FALLBACK_INITS = ("/sbin/init", "/etc/init", "/bin/init", "/bin/sh")   # the kernel's order
ROOT_TIMEOUT = 30.0           # seconds to wait for the root device (rootwait: no limit)
MOVED_MOUNTS = ("/dev", "/proc", "/sys", "/run")
INITRAMFS_TYPES = ("rootfs", "tmpfs", "ramfs")
SHELL = "/bin/sh"


class RootPlan:
    """What to mount and run. A plain class: this module is imported by every machine PID 1,
    which should not carry dataclasses (nor typing) for it."""

    __slots__ = ("spec", "fstype", "flags", "data", "init", "timeout")

    def __init__(self, spec: str, fstype: str | None, flags: int, data: str, init: str,
                 timeout: float):
        self.spec = spec        # /dev/vda, UUID=..., LABEL=..., PARTUUID=..., 254:0
        self.fstype = fstype    # None: try each block file system the kernel knows
        self.flags = flags      # MS_* flags
        self.data = data        # file system options for mount(2)
        self.init = init
        self.timeout = timeout

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RootPlan) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return "RootPlan(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


# --- pure: the command line -> what to do ----------------------------------------------

def parse_rootflags(text: str) -> tuple[int, str]:
    """rootflags= uses fstab's option language: flags for mount(2), the rest as data."""
    from vigil.boot import fstab
    return fstab.parse_options([o for o in text.split(",") if o])


def plan(cmd: Cmdline) -> RootPlan | None:
    """What to mount and run, or None when there is no root= (stay in the initramfs)."""
    spec = (cmd.get("root") or "").strip()
    if not spec:
        return None
    flags, data = parse_rootflags(cmd.get("rootflags") or "")
    # Read-only unless told otherwise: the real init fscks / and remounts it (Debian's way).
    if cmd.has("rw") and not cmd.has("ro"):
        flags &= ~linux.MS_RDONLY
    else:
        flags |= linux.MS_RDONLY
    timeout = float("inf") if cmd.has("rootwait") else ROOT_TIMEOUT
    delay = cmd.get("rootdelay")
    if delay and delay.isdigit():
        timeout = max(timeout, float(delay))
    return RootPlan(spec, cmd.get("rootfstype") or None, flags, data,
                    cmd.get("init") or DEFAULT_INIT, timeout)


def root_is_initramfs(mounts_text: str) -> bool:
    """Whether / (its last mount in /proc/self/mounts) is the kernel's rootfs or a tmpfs."""
    return mounts.parse_mounts(mounts_text).get("/", ("", "", ""))[1] in INITRAMFS_TYPES


def parse_module_list(text: str) -> list[str]:
    """One module name a line; # comments and blank lines ignored."""
    return [w for line in text.splitlines() for w in line.split("#", 1)[0].split()[:1]]


def init_environment(environ: dict[str, str]) -> dict[str, str]:
    """The kernel's environment for init, without what the frozen program's bootloader
    added for itself (PyInstaller's _PYI*/_MEI* and its LD_LIBRARY_PATH)."""
    env = {k: v for k, v in environ.items() if not k.startswith(("_PYI", "_MEI"))}
    if "LD_LIBRARY_PATH_ORIG" in env:
        env["LD_LIBRARY_PATH"] = env.pop("LD_LIBRARY_PATH_ORIG")
    else:
        env.pop("LD_LIBRARY_PATH", None)
    return env


def choose_init(wanted: str, exists: Callable[[str], bool]) -> str | None:
    """init= if it is there, else the kernel's own fallbacks."""
    for path in (wanted, *FALLBACK_INITS):
        if exists(path):
            return path
    return None


# --- side effects -------------------------------------------------------------------------


def load_root_modules(problems: list[str]) -> None:
    names = parse_module_list(read_text(MODULE_LIST))
    if not names:
        return
    from vigil.boot import modules
    moddir = modules.modules_dir()
    dep = read_text(os.path.join(moddir, "modules.dep"))
    if not dep:
        problems.append(f"initramfs: no {moddir}/modules.dep: cannot load {' '.join(names)}")
        return
    # Names and their dependencies only: modules.alias (a megabyte, seconds to parse under
    # emulation) is not needed for a list of real module names; the builder lists softdeps.
    db = modules.ModuleDB(modules.parse_dep(dep), modules.AliasTable(),
                          modules.parse_builtin(read_text(os.path.join(moddir, "modules.builtin"))),
                          modules.ModprobeConfig())
    problems.extend(modules.load_wanted(db, moddir, [(n, "") for n in names],
                                        modules.loaded_modules()))


def find_root(spec: str, timeout: float) -> str | None:
    """The device node for root=; MAJ:MIN is looked up in /sys/dev/block."""
    from vigil.boot import fstab
    major, colon, minor = spec.partition(":")
    if colon and major.isdigit() and minor.isdigit():
        deadline = time.monotonic() + timeout
        while True:
            name = read_text(f"/sys/dev/block/{spec}/uevent")
            for line in name.splitlines():
                if line.startswith("DEVNAME="):
                    return "/dev/" + line.removeprefix("DEVNAME=")
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
    return fstab.wait_for_device(spec, timeout)


def mount_root(device: str, p: RootPlan) -> str:
    """Mount the root device on NEWROOT; returns the type that worked."""
    from vigil.boot import fstab
    os.makedirs(NEWROOT, exist_ok=True)
    return fstab.mount_device(device, NEWROOT, p.fstype, p.flags, p.data)


def delete_tree(path: str, device: int, keep: str) -> None:
    """Remove everything under path that is on `device`, except `keep` (the new root);
    mount points (another device) are left alone. Errors are skipped: it only frees memory."""
    try:
        with os.scandir(path) as listing:
            entries = list(listing)   # all read before any is deleted
    except OSError:
        return
    for entry in entries:
        try:
            if entry.path == keep or entry.stat(follow_symlinks=False).st_dev != device:
                continue
            if entry.is_dir(follow_symlinks=False):
                delete_tree(entry.path, device, keep)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue


def rescue_shell(why: str) -> None:
    """A shell on the console (the only case: no root file system at all)."""
    logs.error(f"{why}: starting {SHELL} on the console; exit it to go on in the initramfs")
    if not os.access(SHELL, os.X_OK):
        return
    pid = os.fork()
    if pid == 0:
        try:
            linux.default_all_signals()
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            os.setsid()
            os.execv(SHELL, [SHELL])
        finally:
            os._exit(127)
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except ChildProcessError:
            return
        except InterruptedError:
            continue


class NoRoot(Exception):
    """The new root cannot be used; the message says why."""


def switch_root(cmd: Cmdline, problems: list[str]) -> None:
    """Everything above; returns only when there is nothing to do or the root cannot be
    mounted (problems then says why)."""
    if not root_is_initramfs(read_text("/proc/self/mounts")):
        return None  # the usual case, checked first: it costs no import
    p = plan(cmd)
    if p is None:
        return None
    load_root_modules(problems)
    try:
        init = mount_new_root(p)
    except NoRoot as e:
        problems.append(f"initramfs: {e}")
        rescue_shell(problems[-1])
        return None
    _switch(init)


def mount_new_root(p: RootPlan) -> str:
    """Find root= and mount it on NEWROOT; returns the init to exec there. Raises NoRoot."""
    device = find_root(p.spec, p.timeout)
    if device is None:
        raise NoRoot(f"root device {p.spec} did not appear within {p.timeout:g} s")
    try:
        fstype = mount_root(device, p)
    except OSError as e:
        raise NoRoot(f"cannot mount {device} (root={p.spec}) on {NEWROOT}: "
                     f"{e.strerror}") from None
    init = choose_init(p.init, lambda path: os.path.lexists(NEWROOT + path))
    if init is None:
        try:
            linux.umount(NEWROOT)
        except OSError as e:   # the shell comes anyway; /newroot just stays mounted
            logs.warn(f"initramfs: {linux.why(e)} unmounting {NEWROOT}")
        raise NoRoot(f"{p.init} is not on {device} (nor any fallback init)")
    if init != p.init:
        logs.error(f"initramfs: {p.init} is not on {device}; running {init} instead")
    logs.say(f"initramfs: {device} ({fstype}) mounted on {NEWROOT}; switching to {init}")
    return init


def _switch(init: str) -> None:  # never returns: it execs
    """Past this point there is no way back: the initramfs is being deleted."""
    mounted = mounts.current()
    for m in MOVED_MOUNTS:
        if m not in mounted:
            continue
        try:
            os.makedirs(NEWROOT + m, exist_ok=True)
            linux.mount(m, NEWROOT + m, None, linux.MS_MOVE)
        except OSError as e:
            logs.error(f"initramfs: move {m} to {NEWROOT}{m}: {e.strerror}")
    # Everything this function still needs is imported: the files are about to go.
    root_dev = os.stat("/").st_dev
    delete_tree("/", root_dev, NEWROOT)
    os.chdir(NEWROOT)
    linux.mount(".", "/", None, linux.MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    # The new init starts as the kernel would start it: default signal dispositions and
    # mask (Python ignores SIGPIPE and SIGXFSZ; vigil blocks what its signalfd reads).
    linux.default_all_signals()
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.closerange(3, 1 << 16)
    env = init_environment(dict(os.environ))
    args = sys.argv[1:]
    for path in (init, *FALLBACK_INITS):
        try:
            os.execve(path, [path, *args], env)
        except OSError as e:
            logs.error(f"initramfs: exec {path}: {e.strerror}")
    # Nothing could be run: PID 1 must not exit (that panics); stay and say so for ever.
    while True:
        logs.error("initramfs: no init could be run on the new root")
        time.sleep(60)
