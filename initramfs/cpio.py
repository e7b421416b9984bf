"""A writer of the "newc" cpio format the Linux kernel unpacks as an initramfs.

The archive is written from a spec (path, type, mode, content), never from a staged
tree's real ownership, so every entry is owned by uid 0 and device nodes can be made
without being root.
"""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member; `path` is relative to / without a leading slash."""

    path: str
    mode: int  # full st_mode: type bits | permission bits
    data: bytes = b""  # file content, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)  # (major, minor) for device nodes
    uid: int = 0
    gid: int = 0
    mtime: int = 0  # fixed, so the same spec gives the same bytes


def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | perm, data)


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | perm)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def chardev(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | perm, rdev=(major, minor))


def blockdev(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFBLK | perm, rdev=(major, minor))


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, e: Entry, nlink: int, name_len: int, size: int) -> bytes:
    fields = (
        ino, e.mode, e.uid, e.gid, nlink, e.mtime, size,
        0, 0,  # dev major/minor of the archived file system: meaningless here
        e.rdev[0], e.rdev[1], name_len, 0,  # check is 0 in newc (only "crc" uses it)
    )
    return MAGIC + b"".join(b"%08X" % v for v in fields)


def _record(out: BinaryIO, ino: int, e: Entry) -> None:
    name = e.path.lstrip("/").encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(e.mode) else 1
    header = _header(ino, e, nlink, len(name), len(e.data))
    # Header (110 bytes) + name are padded to 4 together, then the data to 4.
    out.write(header + name + _pad4(len(header) + len(name)))
    out.write(e.data + _pad4(len(e.data)))


class Archive:
    """Collects entries (parents made implicitly), then writes them in path order."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, e: Entry) -> None:
        path = e.path.strip("/")
        if not path:
            return
        parent = path.rpartition("/")[0]
        if parent and parent not in self.entries:
            self.add(directory(parent))
        # A later entry for the same path wins: callers can override defaults.
        self.entries[path] = Entry(path, e.mode, e.data, e.rdev, e.uid, e.gid, e.mtime)

    def __contains__(self, path: str) -> bool:
        return path.strip("/") in self.entries

    def write(self, out: BinaryIO) -> None:
        # Sorted paths put every directory before what it contains.
        for ino, path in enumerate(sorted(self.entries), start=1):
            _record(out, ino, self.entries[path])
        _record(out, 0, Entry(TRAILER, 0))

    def write_gzip(self, path: str) -> None:
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            self.write(gz)  # type: ignore[arg-type]
