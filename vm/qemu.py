"""Boot a kernel + initramfs in QEMU and drive it over the serial console.

`Console` owns one QEMU process: the guest's ttyS0 is QEMU's stdin/stdout (pipes), and
an HMP monitor listens on a unix socket (for `sendkey ctrl-alt-delete`). Everything read
from the console is kept, so a failing test can print the last lines.

`python -m vm.qemu` boots interactively on this terminal (`make boot`); ctrl-a x quits.
"""

from __future__ import annotations

import argparse
import bisect
import codecs
import enum
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from vm import accel as _accel
from vm import kernel as _kernel

QEMU = _accel.QEMU
PANIC = "Kernel panic"
# A printk line, timestamped. Not anchored: the kernel writes to the serial port
# directly, so its line can land in the middle of a command's line, whose own end
# then follows it.
KERNEL_LINE = r"\[ *\d+\.\d+\] .*\n"
# A terminal escape sequence: CSI (ESC [ ... final) or a two-byte ESC sequence.
CSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")


class ConsoleError(Exception):
    """A console expectation failed; the message ends with the console's last lines."""


class Exit(enum.Enum):
    POWEROFF = "poweroff"  # QEMU exited by itself and no panic was seen
    PANIC = "panic"  # "Kernel panic" appeared on the console
    HANG = "hang"  # QEMU was still running at the deadline and was killed


@dataclass
class Config:
    kernel: Path | None   # None: no -kernel, the firmware boots the first disk (GRUB)
    initrd: Path | None
    rdinit: str = "/sbin/vigil"
    append: str = ""  # more kernel parameters
    memory: str = "512M"
    cpus: int = 1
    # True: a guest reboot (and so a panic, with panic=1) ends QEMU (-no-reboot).
    # False: QEMU survives a reboot and boots again; a panic then shows as PANIC text.
    exit_on_reboot: bool = True
    accel: str | None = None  # None: probe (see vm.accel)
    extra: list[str] = field(default_factory=list)  # more QEMU arguments
    disks: list[Path] = field(default_factory=list)  # raw images: /dev/vda, /dev/vdb, ...
    snapshot: bool = False  # the guest's writes to disks go to a scratch file, not the image

    def cmdline(self) -> str:
        # panic=1: reboot one second after a panic, which -no-reboot turns into an exit,
        # so a panic never leaves QEMU hanging.
        return f"console=ttyS0 rdinit={self.rdinit} panic=1 {self.append}".strip()

    def argv(self, monitor: str | None, interactive: bool = False) -> list[str]:
        accel = self.accel or _accel.accel(self.kernel or _kernel.fetch().vmlinuz)
        args = [
            QEMU, "-accel", accel, "-M", "pc", "-m", self.memory, "-smp", str(self.cpus),
            "-nodefaults", "-no-user-config",
            # No floppy drive: otherwise the guest kernel probes it and logs errors.
            "-global", "isa-fdc.fdtypeA=none",
        ]
        if self.kernel is not None:
            args += ["-kernel", str(self.kernel), "-initrd", str(self.initrd),
                     "-append", self.cmdline()]
        if interactive:
            # Serial and monitor multiplexed on this terminal (ctrl-a c, ctrl-a x).
            args += ["-nographic", "-serial", "mon:stdio"]
        else:
            args += ["-display", "none", "-serial", "stdio"]
        if monitor:
            args += ["-monitor", f"unix:{monitor},server=on,wait=off"]
        elif not interactive:
            args += ["-monitor", "none"]
        for disk in self.disks:
            args += ["-drive", f"file={disk},format=raw,if=virtio"]
        if self.snapshot:
            args.append("-snapshot")
        if self.exit_on_reboot:
            args.append("-no-reboot")
        return args + self.extra


class Console:
    """One running QEMU, driven through its serial console."""

    def __init__(self, config: Config, log_path: Path | None = None) -> None:
        self.config = config
        self.tmp = Path(tempfile.mkdtemp(prefix="vigil-qemu."))
        self.monitor_path = str(self.tmp / "monitor.sock")
        self.text = ""  # all console output, \r removed
        self.pos = 0  # expect() searches from here: what was matched is consumed
        self.log = open(log_path, "w") if log_path else None  # noqa: SIM115 (closed in close())
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            config.argv(self.monitor_path),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._fd = self.proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)
        self._eof = False
        self._held = ""  # an incomplete escape sequence from the last read
        # a character whose bytes are split between two reads is decoded whole
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # Whole lines that are not a command's output but land in it anyway, because
        # the kernel and PID 1 write to the same console: dropped from run()'s result.
        self.noise: list[str] = [KERNEL_LINE]
        # (end offset in text, host time read): when any piece of output arrived.
        self.arrivals: list[tuple[int, float]] = []
        self.exit: Exit | None = None

    # -- reading ---------------------------------------------------------------

    def _pump(self, timeout: float) -> bool:
        """Read what is there (waiting up to `timeout`); False once QEMU closed stdout."""
        if self._eof:
            return False
        if not self._sel.select(max(timeout, 0)):
            return True
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                return True
            if not chunk:
                self._eof = True
                return False
            s = self._held + self._utf8.decode(chunk).replace("\r", "")
            # Hold back an escape sequence cut by the chunk's end, then drop the
            # terminal control sequences (ash asks for the cursor position after
            # each prompt) so patterns can match what a person would see.
            cut = s.rfind("\x1b")
            if cut >= 0 and not CSI.match(s, cut):
                s, self._held = s[:cut], s[cut:]
            else:
                self._held = ""
            s = CSI.sub("", s)
            self.text += s
            self.arrivals.append((len(self.text), time.monotonic()))
            if self.log:
                self.log.write(s)
                self.log.flush()

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.text.splitlines()[-n:])

    def _fail(self, what: str) -> ConsoleError:
        return ConsoleError(f"{what}\n---- last console lines ----\n{self.tail()}")

    def expect(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait for a regex in the console output after the previous match."""
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.text, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"timeout ({timeout:.0f} s) waiting for {pattern!r}")
            if not self._pump(min(left, 1.0)) and not rx.search(self.text, self.pos):
                self.proc.wait()
                raise self._fail(
                    f"QEMU exited ({self.proc.returncode}) while waiting for {pattern!r}"
                )

    def arrived(self, offset: int) -> float:
        """Host time.monotonic() at which the text at `offset` was read."""
        i = bisect.bisect_right(self.arrivals, offset, key=lambda a: a[0])
        return self.arrivals[min(i, len(self.arrivals) - 1)][1]

    def seen(self, pattern: str) -> bool:
        """Whether `pattern` appeared anywhere in the output so far."""
        return re.search(pattern, self.text, re.MULTILINE) is not None

    # -- writing ---------------------------------------------------------------

    def send(self, data: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data.encode())
            self.proc.stdin.flush()
        except BrokenPipeError as e:
            raise self._fail("QEMU's stdin is closed (QEMU exited)") from e

    def sendline(self, line: str) -> None:
        self.send(line + "\n")

    def login(self, user: str = "root", password: str = "", timeout: float = 120.0) -> None:
        """Log in at the getty prompt and wait until the shell answers a command."""
        # Not anchored at the line's end: PID 1's log lines may follow on the same line.
        self.expect(r"login: ", timeout)
        self.sendline(user)
        m = self.expect(r"Password: |[#$] ", timeout=30)
        if m.group(0).startswith("Password"):
            self.sendline(password)
            self.expect(r"[#$] ", timeout=30)
        # in sync (the shell reads and runs commands); and a script reads the console, not
        # a person: vigilctl's pager (as systemctl's) would wait for a key
        self.run("export VIGIL_PAGER=cat", timeout=30)

    def run(self, cmd: str, timeout: float = 30.0) -> tuple[str, int]:
        """Run a shell command line; returns (its output, its exit status).

        The markers are printed by printf from pieces, so the terminal's echo of the
        command line itself (which contains the format, not the result) never matches.
        """
        tag = uuid.uuid4().hex[:10]
        # One line: a second one would be echoed by the shell's line editor after the
        # command's output, inside what we return. So `cmd` must end as a list can.
        self.sendline(f"printf '@@B%s@@\\n' {tag}; {cmd}; printf '@@E%s:%d@@\\n' {tag} $?")
        self.expect(rf"^@@B{tag}@@\n", timeout)
        start = self.pos
        m = self.expect(rf"@@E{tag}:(\d+)@@\n", timeout)
        out = self.text[start:m.start()]
        for rx in self.noise:
            out = re.sub(rx, "", out, flags=re.MULTILINE)
        return out, int(m.group(1))

    def check(self, cmd: str, timeout: float = 30.0) -> str:
        """run() that raises unless the command exits 0."""
        out, status = self.run(cmd, timeout)
        if status != 0:
            raise self._fail(f"{cmd!r} exited {status}:\n{out}")
        return out

    def monitor(self, command: str, timeout: float = 10.0) -> str:
        """Send one HMP command (e.g. "sendkey ctrl-alt-delete"); returns its reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.monitor_path)
            reply = b""
            while not reply.endswith(b"(qemu) "):  # the banner, then the prompt
                reply += s.recv(4096)
            s.sendall(command.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"(qemu) "):
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode("utf-8", "replace")

    # -- ending ----------------------------------------------------------------

    def wait_exit(self, timeout: float = 60.0) -> Exit:
        """Wait for QEMU to end; a timeout kills it and returns HANG."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None or not self._eof:
            if self.seen(PANIC):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._pump(min(left, 0.5))
            if self._eof:
                try:
                    self.proc.wait(max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    break
        if self.seen(PANIC):
            self.exit = Exit.PANIC
        elif self.proc.poll() is None:
            self.exit = Exit.HANG
        else:
            self.exit = Exit.POWEROFF
        self.kill()
        return self.exit

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.kill()
        self._sel.close()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()
        if self.log:
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def interactive(config: Config) -> int:
    """Boot on this terminal; QEMU exits when the guest powers off (or ctrl-a x)."""
    config.exit_on_reboot = True
    return subprocess.call(config.argv(None, interactive=True))


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description="Boot the test initramfs on this terminal.")
    p.add_argument("--initrd", type=Path, default=repo / "build" / "initramfs.cpio.gz")
    p.add_argument("--init", default="/sbin/vigil", help="rdinit= (e.g. /sbin/init)")
    p.add_argument("--append", default="", help="more kernel parameters")
    p.add_argument("--memory", default="512M")
    p.add_argument("--disk", type=Path, action="append", default=[],
                   help="a raw disk image (repeatable: vda, vdb, ...)")
    p.add_argument("--snapshot", action="store_true", help="do not write to the disks")
    p.add_argument("--net", action="store_true", help="the NIC the Debian disk expects")
    args = p.parse_args(argv)
    k = _kernel.fetch()
    extra = []
    if args.net:
        from vm import image
        extra = image.nic_args()
    return interactive(Config(k.vmlinuz, args.initrd, args.init, args.append, args.memory,
                              extra=extra, disks=args.disk, snapshot=args.snapshot))


if __name__ == "__main__":
    sys.exit(main())
