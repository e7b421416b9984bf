"""Logging: vigil's own messages, and each service's output captured through a pipe.

vigil's own lines go to stderr (the console) and, when it is the machine's PID 1, to
/dev/kmsg so that dmesg shows them. The kmsg copy is written at debug level (errors and
warnings say so in the text) so that the kernel does not echo it to the console a second
time, and the console copy does not depend on the kernel's rate limit on /dev/kmsg.

A service's stdout and stderr share one pipe that vigil holds for the unit's whole life
(so output from a restarted or double-forked process still arrives). Complete lines are
stamped with the time they were read and appended to LOGDIR/NAME.log, which is rotated
at a size between two lines, never inside one.

Memory is bounded two ways:
  * while the file is writable, vigil reads at most READ_CHUNK bytes per wake-up and
    writes them out before reading more, so a fast writer blocks on its full pipe
    (backpressure) instead of growing vigil;
  * while the directory is not writable (read-only root at boot), lines wait in a
    buffer of at most MEMORY_LIMIT bytes per service; when it is full the oldest lines
    are dropped and counted, and the count is written to the file when it opens. A
    service is never blocked because the disk is not there yet.
"""

import os
import time
from collections import deque

READ_CHUNK = 65536
MEMORY_LIMIT = 256 * 1024
MAX_LINE = 8192          # a longer line is written in pieces of this size
RETRY_OPEN_AFTER = 1.0   # seconds between attempts to open an unwritable log file

_kmsg_fd = -1
DEBUG = False  # vigil.debug on the kernel command line: every state change is logged


def use_kmsg() -> None:
    """Also send vigil's messages to the kernel log (only as the machine's PID 1)."""
    global _kmsg_fd
    try:
        _kmsg_fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        _kmsg_fd = -1
    try:  # the kernel keeps 10 lines of each 5 s from /dev/kmsg by default: keep them all
        with open("/proc/sys/kernel/printk_devkmsg", "w") as f:
            f.write("on\n")
    except OSError:
        pass


KMSG_PREFIX = "<31>"  # facility daemon (3 << 3), level debug (7): never echoed to the console
LEVEL_WORDS = {3: "error: ", 4: "warning: "}


# C0 controls but tab, DEL and C1 controls as \xNN: a unit file name or a service's text
# with escape sequences in it must not move the cursor, clear or retitle the console.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0)) if c != 0x09}


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


def say(message: str, level: int = 6) -> None:
    """One line from vigil itself. level is the syslog priority (3 error, 4 warning, 6 info)."""
    line = f"vigil: {LEVEL_WORDS.get(level, '')}{escape(message)}\n"
    try:
        os.write(2, line.encode(errors="replace"))
    except OSError:
        pass
    if _kmsg_fd >= 0:
        try:
            os.write(_kmsg_fd, (KMSG_PREFIX + line).encode(errors="replace"))
        except OSError:
            pass


def error(message: str) -> None:
    say(message, 3)


def warn(message: str) -> None:
    say(message, 4)


def exception(what: str, e: BaseException) -> None:
    """An unexpected exception in one of vigil's handlers: the error and its traceback (the
    traceback module is only imported then)."""
    import traceback
    error(f"error in {what}: {e!r}")
    for text in traceback.format_exception(e)[:-1]:
        for line in text.rstrip("\n").splitlines():
            say("  " + line, 3)


def _stamp(now: float) -> bytes:
    return (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            + ".%06d " % int((now % 1) * 1e6)).encode()


class ServiceLog:
    """The pipe, the file and the memory buffer of one service's output."""

    def __init__(self, name: str, log_dir: str, max_size: int, keep: int):
        self.name, self.log_dir = name, log_dir
        self.max_size, self.keep = max_size, keep
        self.path = os.path.join(log_dir, name + ".log")
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.read_fd, False)
        self.partial = b""
        self.memory: deque[bytes] = deque()
        self.memory_bytes = 0
        self.dropped = 0         # lines dropped in all (status)
        self.unsaid_drops = 0    # dropped since the file last said so
        self.file_fd = -1
        self.size = 0
        self.next_try = 0.0
        self.last_error = ""
        self.lines = 0           # lines seen in total, for status and tests

    # --- carried over a re-exec: the pipe itself, and what was not written yet ------
    def snapshot(self) -> dict:
        return {"fds": [self.read_fd, self.write_fd], "partial": self.partial.decode("latin-1"),
                "memory": [m.decode("latin-1") for m in self.memory],
                "dropped": self.dropped, "unsaid_drops": self.unsaid_drops,
                "lines": self.lines}

    def restore(self, state: dict) -> None:
        """Take over the pipe of the vigil this one replaced, closing our new one."""
        os.close(self.read_fd)
        os.close(self.write_fd)
        self.read_fd, self.write_fd = state["fds"]
        for fd in state["fds"]:
            os.set_inheritable(fd, False)
        os.set_blocking(self.read_fd, False)
        self.partial = state["partial"].encode("latin-1")
        self.memory.extend(m.encode("latin-1") for m in state["memory"])
        self.memory_bytes = sum(len(m) for m in self.memory)
        self.dropped, self.lines = state["dropped"], state["lines"]
        self.unsaid_drops = state.get("unsaid_drops", 0)

    @staticmethod
    def discard(state: dict) -> None:
        """The saved pipe of a unit that is gone: close it."""
        for fd in state["fds"]:
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self) -> None:
        self.flush_partial()
        for fd in (self.read_fd, self.write_fd, self.file_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = self.file_fd = -1

    def release(self) -> None:
        """At the end: write what is left if the disk takes it, and close the file, which
        would keep its file system from being remounted read-only. Nothing reopens it."""
        self.on_readable()
        self.flush_partial()
        self.flush_memory()
        if self.file_fd >= 0:
            os.close(self.file_fd)
            self.file_fd = -1
        self.next_try = float("inf")

    def on_readable(self) -> None:
        try:
            data = os.read(self.read_fd, READ_CHUNK)
        except BlockingIOError:
            return
        if not data:
            return
        data = self.partial + data
        cut = data.rfind(b"\n") + 1
        # split on \n alone: a \r in a line is the service's text, not a line of its own
        lines = [line + b"\n" for line in data[:cut - 1].split(b"\n")] if cut else []
        self.partial = data[cut:]
        while len(self.partial) > MAX_LINE:
            lines.append(self.partial[:MAX_LINE] + b"\n")
            self.partial = self.partial[MAX_LINE:]
        if lines:
            self.store(lines)

    def flush_partial(self) -> None:
        """Write a last line that has no newline (the service ended mid-line)."""
        if self.partial:
            self.store([self.partial + b"\n"])
            self.partial = b""

    def store(self, lines: list[bytes]) -> None:
        now = time.time()
        stamp = _stamp(now)
        self.lines += len(lines)
        if self.file_fd < 0 and not self._open(now):
            for line in lines:
                self._remember(stamp + line)
            return
        self._write([stamp + line for line in lines])

    def _remember(self, line: bytes) -> None:
        self.memory.append(line)
        self.memory_bytes += len(line)
        while self.memory_bytes > MEMORY_LIMIT:
            self.memory_bytes -= len(self.memory.popleft())
            self.dropped += 1
            self.unsaid_drops += 1

    def flush_memory(self) -> bool:
        """Try to write what waits in memory (called when the disk may have become writable)."""
        if self.file_fd < 0 and not self._open(time.time(), force=True):
            return False
        return True

    def _failing(self, why: str) -> None:
        """The file cannot be written: said once, until it can be again."""
        if not self.last_error:
            warn(f"{self.name}: {why}; keeping its last lines in memory "
                 f"({MEMORY_LIMIT // 1024} KiB) until it can be written")
        self.last_error = why

    def _open(self, now: float, force: bool = False) -> bool:
        if not force and now < self.next_try:
            return False
        self.next_try = now + RETRY_OPEN_AFTER
        try:
            os.makedirs(self.log_dir, mode=0o755, exist_ok=True)
            self.file_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                   | os.O_CLOEXEC, 0o640)
            self.size = os.fstat(self.file_fd).st_size
        except OSError as e:
            self._failing(f"{self.path}: {e.strerror}")
            return False
        waiting = list(self.memory)
        if self.unsaid_drops:  # the dropped lines were older than those kept
            waiting.insert(0, _stamp(now) + b"vigil: %d lines dropped while the log was not "
                           b"writable\n" % self.unsaid_drops)
        self.memory.clear()
        self.memory_bytes = 0
        drops, self.unsaid_drops = self.unsaid_drops, 0
        if waiting:
            self._write(waiting)
        if self.file_fd >= 0 and self.last_error:
            say(f"{self.name}: {self.path} is writable again: {len(waiting)} lines written "
                f"from memory, {drops} dropped")
            self.last_error = ""
        return self.file_fd >= 0

    def _write(self, lines: list[bytes]) -> None:
        """Append whole lines, rotating between lines when the file would pass max_size."""
        chunk: list[bytes] = []
        chunk_size = 0
        for line in lines:
            if self.size + chunk_size + len(line) > self.max_size and self.size + chunk_size:
                self._append(chunk)
                chunk, chunk_size = [], 0
                self._rotate()
            chunk.append(line)
            chunk_size += len(line)
        self._append(chunk)

    def _append(self, chunk: list[bytes]) -> None:
        if chunk and self.file_fd >= 0 and self._unlinked():
            os.close(self.file_fd)  # its file was removed: writing on would lose the lines
            self.file_fd = -1
            self._open(time.time(), force=True)
        if not chunk or self.file_fd < 0:
            for line in chunk:
                self._remember(line)
            return
        data = b"".join(chunk)
        written = 0
        try:
            while written < len(data):
                written += os.write(self.file_fd, data[written:])
        except OSError as e:  # disk full or gone: the rest waits in memory
            self._failing(f"{self.path}: {e.strerror}")
            whole, kept = 0, 0
            while kept < len(chunk) and whole + len(chunk[kept]) <= written:
                whole += len(chunk[kept])
                kept += 1
            self._cut(written - whole)
            os.close(self.file_fd)
            self.file_fd = -1
            for line in chunk[kept:]:
                self._remember(line)
            written = whole
        self.size += written

    def _cut(self, tail: int) -> None:
        """Take back the start of a line that did not fit: only whole lines stay on disk."""
        if tail:
            try:
                os.ftruncate(self.file_fd, os.fstat(self.file_fd).st_size - tail)
            except OSError:
                pass

    def _unlinked(self) -> bool:
        try:
            return os.fstat(self.file_fd).st_nlink == 0
        except OSError:
            return True

    def _rotate(self) -> None:
        os.close(self.file_fd)
        self.file_fd = -1
        try:
            for k in range(self.keep - 1, 0, -1):
                older = f"{self.path}.{k}"
                if os.path.exists(older):
                    os.rename(older, f"{self.path}.{k + 1}")
            os.rename(self.path, self.path + ".1")
        except OSError as e:
            self.last_error = f"rotating {self.path}: {e.strerror}"
        self.size = 0
        self._open(time.time(), force=True)

    def tail_in_memory(self) -> list[str]:
        return [line.decode(errors="replace").rstrip("\n") for line in self.memory]
