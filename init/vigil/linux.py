"""Every Linux syscall that the standard library does not wrap, in one place.

Each wrapper raises OSError with the real errno, so callers handle failures
the same way as they handle os.* calls. Nothing else in vigil touches ctypes.
"""

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def why(e: OSError) -> str:
    """The reason alone: the wrappers here say "mount /x: reason", and a caller's message
    already names /x. Any other OSError keeps its own words."""
    plain = os.strerror(e.errno) if e.errno else ""
    if plain and e.strerror and e.strerror.endswith(plain):
        return plain
    return e.strerror or str(e)


# --- signalfd(2) ---------------------------------------------------------------
SFD_NONBLOCK = os.O_NONBLOCK
SFD_CLOEXEC = os.O_CLOEXEC
SIGINFO_SIZE = 128  # sizeof(struct signalfd_siginfo)


def signalfd(signals: set[int]) -> int:
    """A non-blocking, close-on-exec signalfd for these (already blocked) signals."""
    mask = 0
    for sig in signals:
        mask |= 1 << (sig - 1)
    sigset = struct.pack("Q", mask) + bytes(120)  # glibc's sigset_t is 128 bytes
    buf = ctypes.create_string_buffer(sigset, len(sigset))
    return _check(_libc.signalfd(-1, buf, SFD_NONBLOCK | SFD_CLOEXEC), "signalfd")


def read_signals(fd: int) -> list[tuple[int, int]]:
    """Drain a signalfd: a list of (signal number, sender pid)."""
    out = []
    while True:
        try:
            data = os.read(fd, SIGINFO_SIZE * 16)
        except BlockingIOError:
            return out
        for off in range(0, len(data), SIGINFO_SIZE):
            signo, _errno, _code, pid = struct.unpack_from("IiiI", data, off)
            out.append((signo, pid))


# --- rt_sigaction(2) -------------------------------------------------------------
_SYS_RT_SIGACTION = 13  # x86_64
_SIG_DFL_ACTION = bytes(32)  # struct kernel_sigaction: handler SIG_DFL (0), no flags, no mask


def ignored_signals() -> list[int]:
    """The signals this process ignores: the only dispositions an exec keeps (a handler
    becomes the default by itself), so the only ones a child must reset before exec."""
    out = []
    old = ctypes.create_string_buffer(32)
    for sig in range(1, 65):
        if _libc.syscall(_SYS_RT_SIGACTION, sig, None, old, 8) == 0 \
                and struct.unpack_from("Q", old.raw)[0] == 1:  # SIG_IGN
            out.append(sig)
    return out


def default_signals(signals: list[int]) -> None:
    """These signals back to their default action (raw syscalls: glibc refuses to touch
    its own 32 and 33, which a parent of vigil may have left ignored)."""
    for sig in signals:
        _libc.syscall(_SYS_RT_SIGACTION, sig, _SIG_DFL_ACTION, None, 8)


def default_all_signals() -> None:
    """Every signal back to its default action, in a child before exec.

    Raw syscalls, because glibc refuses to touch its own real-time signals 32 and 33, and
    an ignored disposition of those would otherwise pass from vigil's parent to services.
    """
    for sig in range(1, 65):
        if sig not in (9, 19):  # SIGKILL, SIGSTOP cannot be changed
            _libc.syscall(_SYS_RT_SIGACTION, sig, _SIG_DFL_ACTION, None, 8)


# --- prctl(2) ------------------------------------------------------------------
PR_SET_CHILD_SUBREAPER = 36


def set_child_subreaper() -> None:
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


# --- reboot(2) -----------------------------------------------------------------
RB_AUTOBOOT = 0x01234567
RB_HALT_SYSTEM = 0xCDEF0123
RB_POWER_OFF = 0x4321FEDC
RB_ENABLE_CAD = 0x89ABCDEF
RB_DISABLE_CAD = 0x00000000
# What reboot(2) is asked for each way down.
REBOOT_COMMANDS = {"poweroff": RB_POWER_OFF, "reboot": RB_AUTOBOOT, "halt": RB_HALT_SYSTEM}


def reboot(cmd: int) -> None:
    _check(_libc.reboot(ctypes.c_int(ctypes.c_int32(cmd).value)), "reboot")


# --- mount(2), umount2(2) ------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_FORCE = 1
MNT_DETACH = 2


def mount(source: str, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {target}")


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


# --- swapon(2), swapoff(2) -----------------------------------------------------
SWAP_FLAG_PREFER = 0x8000
SWAP_FLAG_DISCARD = 0x10000
SWAP_FLAG_PRIO_MASK = 0x7FFF


def swapon(path: str, flags: int = 0) -> None:
    _check(_libc.swapon(path.encode(), flags), f"swapon {path}")


def swapoff(path: str) -> None:
    _check(_libc.swapoff(path.encode()), f"swapoff {path}")


# --- init_module(2), finit_module(2) -------------------------------------------
_SYS_INIT_MODULE = 175  # x86_64
_SYS_FINIT_MODULE = 313


def init_module(image: bytes, params: str) -> None:
    _check(_libc.syscall(_SYS_INIT_MODULE, image, ctypes.c_ulong(len(image)),
                         params.encode()), "init_module")


def finit_module(fd: int, params: str) -> None:
    _check(_libc.syscall(_SYS_FINIT_MODULE, fd, params.encode(), 0), "finit_module")


# --- finit_module(2) with MODULE_INIT_COMPRESSED_FILE ------------------------------
MODULE_INIT_COMPRESSED_FILE = 4


def finit_module_compressed(fd: int, params: str) -> None:
    """Let the kernel decompress the module itself (kernels built with MODULE_DECOMPRESS)."""
    _check(_libc.syscall(_SYS_FINIT_MODULE, fd, params.encode(),
                         MODULE_INIT_COMPRESSED_FILE), "finit_module")


# --- settimeofday(2), the timezone half only -----------------------------------------
class _Timezone(ctypes.Structure):
    _fields_ = [("tz_minuteswest", ctypes.c_int), ("tz_dsttime", ctypes.c_int)]


def set_kernel_timezone(minutes_west: int) -> None:
    """settimeofday(NULL, &tz): the kernel's idea of local time (FAT times, some RTCs).

    The first such call since boot also shifts the clock by minutes_west when it is not 0
    (the kernel assumes the hardware clock kept local time), so a caller whose hardware
    clock keeps UTC makes a first call with 0.
    """
    tz = _Timezone(minutes_west, 0)
    _check(_libc.settimeofday(None, ctypes.byref(tz)), "settimeofday")
