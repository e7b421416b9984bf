"""Swap from fstab (partitions and swap files), turned on with swapon(2).

`pri=N` becomes SWAP_FLAG_PREFER | N and `discard` (or `discard=...`) SWAP_FLAG_DISCARD, as
swapon(8) does. What /proc/swaps already lists is skipped. A swap that cannot be turned on
is logged and the boot goes on without it (a `nofail` entry only warns).
"""

import errno
import os

from vigil import linux, logs
from vigil.boot import fstab
from vigil.boot.mounts import active_swaps
from vigil.files import read_text


def swap_flags(entry: fstab.Entry) -> tuple[int, str | None]:
    """(flags for swapon(2), a problem with the options or None). Pure."""
    flags = 0
    pri = entry.option_value("pri")
    if pri is not None:
        try:
            prio = int(pri)
        except ValueError:
            return 0, f"fstab line {entry.line}: pri={pri} is not a number"
        if not 0 <= prio <= linux.SWAP_FLAG_PRIO_MASK:
            return 0, f"fstab line {entry.line}: pri={pri} is out of range (0-32767)"
        flags |= linux.SWAP_FLAG_PREFER | prio
    if entry.option_value("discard") is not None:
        flags |= linux.SWAP_FLAG_DISCARD
    return flags, None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def swap_on(entries: list[fstab.Entry],
            default_timeout: float = fstab.DEFAULT_DEVICE_TIMEOUT) -> list[str]:
    """Turn on every swap entry that is not noauto and not already on. Returns problems."""
    problems: list[str] = []
    for entry in entries:
        if entry.noauto:
            continue

        def fail(why: str, entry: fstab.Entry = entry) -> None:
            message = f"swap {entry.spec} (fstab line {entry.line}): {why}"
            if entry.nofail:
                logs.warn(message)
            else:
                logs.error(message)
                problems.append(message)

        flags, bad = swap_flags(entry)
        if bad:
            fail(bad)
            continue
        if entry.spec.startswith("/") and not entry.spec.startswith("/dev/"):
            path: str | None = entry.spec if os.path.exists(entry.spec) else None  # a file
        else:
            path = fstab.wait_for_device(entry.spec, fstab.device_timeout(entry, default_timeout))
        if path is None:
            fail("not found")
            continue
        on = active_swaps(read_text("/proc/swaps"))
        if path in on or any(_same_file(path, p) for p in on):
            continue
        try:
            linux.swapon(path, flags)
            logs.say(f"swap on {path}")
        except OSError as e:
            if e.errno == errno.EBUSY:   # already in use as swap (by another name)
                continue
            fail(linux.why(e))
    return problems
