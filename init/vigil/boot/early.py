"""The first things PID 1 does on a machine: the kernel's file systems and the console.

Each step skips what is already there (an initramfs may have done it before us) and a
failure is logged, never fatal: a machine with no /dev/pts still gets its serial getty.
"""

import os

from vigil import linux, logs
from vigil.boot import mounts

# (source, target, type, flags, data), in order: /dev before /dev/pts and /dev/shm.
ESSENTIAL = [
    ("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, None),
    ("sysfs", "/sys", "sysfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, None),
    ("devtmpfs", "/dev", "devtmpfs", linux.MS_NOSUID, "mode=0755"),
    ("devpts", "/dev/pts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC,
     "gid=5,mode=0620,ptmxmode=0666"),
    ("tmpfs", "/dev/shm", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=1777"),
    ("tmpfs", "/run", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=0755,size=20%"),
]


def mount_essentials() -> list[str]:
    """Mount what is missing; return a problem line for each that failed."""
    problems = []
    for source, target, fstype, flags, data in ESSENTIAL:
        if target in mounts.current():
            continue
        try:
            os.makedirs(target, exist_ok=True)
            linux.mount(source, target, fstype, flags, data)
        except OSError as e:
            problems.append(f"mount {fstype} on {target}: {e.strerror}")
            logs.error(problems[-1])
    return problems


def console_on_stdio() -> None:
    """fds 0-2 on /dev/console (the kernel leaves them closed if it had no /dev/console)."""
    try:
        os.fstat(2)
        return
    except OSError:
        pass
    try:
        fd = os.open("/dev/console", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        fd = os.open("/dev/null", os.O_RDWR)
    for target in (0, 1, 2):
        if fd != target:
            os.dup2(fd, target)
    if fd > 2:
        os.close(fd)
