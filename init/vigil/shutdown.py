"""Stage 3 on a machine, after the services have stopped and the rest was killed:
random seed, swapoff, sync, unmount in reverse order, / read-only, sync.

Every step is logged with the time since stage 3 began; a step that fails is logged and
the sequence goes on, because the machine must always go down.
"""

import errno
import os
import time

from vigil import linux, logs, utmp
from vigil.boot import seed
from vigil.boot.mounts import active_swaps, unescape
from vigil.files import read_text

# Kernel file systems that stay until the end (and are needed for the console).
KEEP_MOUNTED = ("/", "/proc", "/sys", "/dev")


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
