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


def swap_on(entries: list[fstab.Entry], pending: list[fstab.Entry]) -> list[str]:
    """Turn on every swap entry that is not noauto and not already on. Returns problems.
    A device that is not there yet is not waited for: it goes to `pending`, for a unit
    that waits for it (fstab.mount_units)."""
    problems: list[str] = []
    for entry in entries:
        if entry.noauto:
            continue
        flags, bad = swap_flags(entry)
        if bad:
            _fail(entry, bad, problems)
            continue
        if entry.spec.startswith("/") and not entry.spec.startswith("/dev/"):
            path: str | None = entry.spec if os.path.exists(entry.spec) else None  # a file
        else:
            path = fstab.find_device(entry.spec)
            if path is None:
                logs.say(f"fstab line {entry.line}: swap {entry.spec} is not there yet: the "
                         f"unit {fstab.swap_unit_name(entry.spec)} waits for it")
                pending.append(entry)
                continue
        if path is None:
            _fail(entry, "not found", problems)
            continue
        failed = _turn_on(path, flags)
        if failed:
            _fail(entry, failed, problems)
    return problems


def swap_later(spec: str, default_timeout: float, root: str = "/") -> int:
    """`vigil --swap SPEC`, run by the unit fstab.mount_units made: wait for the device (a
    nofail one for as long as it takes), swapon. Returns the exit status (0 on, 1 not)."""
    entry = next((e for e in fstab.load(root).swaps if e.spec == spec), None)
    if entry is None:
        logs.error(f"swap {spec}: not in /etc/fstab")
        return 1
    timeout = fstab.announce_wait(entry, default_timeout)
    path = fstab.wait_for_device(spec, timeout)
    flags, bad = swap_flags(entry)
    failed = bad or (_turn_on(path, flags) if path else f"device not found within {timeout:g} s")
    if failed:
        logs.error(f"swap {spec} (fstab line {entry.line}): {failed}")
        return 1
    fstab.notify(f"READY=1\nSTATUS=swap on {path}")
    return 0


def _turn_on(path: str, flags: int) -> str | None:
    """swapon(2) unless /proc/swaps has it already; None when it is on, else why not."""
    on = active_swaps(read_text("/proc/swaps"))
    if path in on or any(_same_file(path, p) for p in on):
        return None
    try:
        linux.swapon(path, flags)
    except OSError as e:
        if e.errno == errno.EBUSY:   # already in use as swap (by another name)
            return None
        return linux.why(e)
    logs.say(f"swap on {path}")
    return None


def _fail(entry: fstab.Entry, why: str, problems: list[str]) -> None:
    message = f"swap {entry.spec} (fstab line {entry.line}): {why}"
    if entry.nofail:
        logs.warn(message)
    else:
        logs.error(message)
        problems.append(message)
