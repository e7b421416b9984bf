"""Kernel settings from sysctl.d and /etc/sysctl.conf, written to /proc/sys at boot.

What procps' `sysctl --system` does on Debian (its init script runs it at boot): the
`*.conf` files of SYSCTL_DIRS, a name in an earlier directory masking the same name in a
later one, applied in the lexical order of their names, then /etc/sysctl.conf last (again,
when sysctl.d links to it: procps does the same).

A line is `key = value`; `#` and `;` start a comment line; `-key = value` means a failure
to set it is no problem; `-key` alone excludes that key from the globs of other lines
(`net.ipv4.conf.*.rp_filter = 2`). In a key, `.` separates the levels, unless the first
separator is a `/`: then `/` does, and a dot is part of a name
(`net.ipv4.conf.eth0/100.rp_filter` and `net/ipv4/conf/eth0.100/rp_filter` are the same).
Every other failure is a problem naming file:line.
"""

import errno
import glob
import os

SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d",
               "/usr/lib/sysctl.d", "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"
PROC_SYS = "/proc/sys"


class Setting:
    """One line: where it is, the key as written, its path under /proc/sys, the value
    (None: an exclusion), and whether a failure to write it is ignored."""

    __slots__ = ("where", "key", "path", "value", "ignore_failure")

    def __init__(self, where: str, key: str, path: str, value: str | None,
                 ignore_failure: bool):
        self.where, self.key, self.path = where, key, path
        self.value, self.ignore_failure = value, ignore_failure

    def __repr__(self) -> str:
        return f"Setting({self.where}: {self.key}={self.value!r})"

    @property
    def is_glob(self) -> bool:
        return any(c in self.path for c in "*?[")


_SWAP = str.maketrans("./", "/.")


def key_path(key: str) -> str | None:
    """A key as sysctl(8) reads it -> its path relative to /proc/sys; None when it is no
    key at all (empty, or leaving /proc/sys)."""
    first = next((c for c in key if c in "./"), "/")
    if first == ".":   # dotted: dots become slashes, and a slash stands for a dot
        key = key.translate(_SWAP)
    parts = [p for p in key.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        return None
    return "/".join(parts)


def parse(text: str, filename: str) -> tuple[list[Setting], list[str]]:
    """One file's settings, and a problem for each line that is not one. Pure."""
    settings: list[Setting] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        where = f"{filename}:{number}"
        key, eq, value = line.partition("=")
        ignore = key.startswith("-")
        key = key.removeprefix("-").strip()
        if not eq and not ignore:
            problems.append(f"{where}: expected key = value, got {line!r}")
            continue
        path = key_path(key)
        if path is None:
            problems.append(f"{where}: {key!r} is not a key under {PROC_SYS}")
            continue
        settings.append(Setting(where, key, path, value.strip() if eq else None, ignore))
    return settings, problems


def files(root: str = "/") -> list[str]:
    """The files `sysctl --system` reads, in its order."""
    from vigil.files import config_files
    chosen = config_files(SYSCTL_DIRS, root=root)
    conf = os.path.join(root, SYSCTL_CONF.lstrip("/"))
    return chosen + [conf] if os.path.isfile(conf) else chosen


def writes(settings: list[Setting], expand=None) -> list[tuple[Setting, str]]:
    """(setting, path under /proc/sys) to write, in order. A glob (expanded by `expand`,
    which lists the matching paths) skips the paths another line names exactly: that line
    overrides it, or excludes them (`-key`). Pure, given expand."""
    exact = {s.path for s in settings if not s.is_glob}
    out = []
    for s in settings:
        if s.value is None:
            continue
        if not s.is_glob:
            out.append((s, s.path))
        elif expand is not None:
            out.extend((s, p) for p in expand(s.path) if p not in exact)
    return out


def apply(root: str = "/", proc_sys: str = PROC_SYS) -> list[str]:
    """Read every file, write every value; returns the problems (each naming file:line)."""
    from vigil import logs
    from vigil.files import read_text
    settings: list[Setting] = []
    problems: list[str] = []
    for path in files(root):
        found, bad = parse(read_text(path), path)
        settings += found
        problems += bad

    def expand(pattern: str) -> list[str]:
        return sorted(os.path.relpath(p, proc_sys)
                      for p in glob.glob(os.path.join(proc_sys, pattern)))

    written = 0
    for s, path in writes(settings, expand):
        try:   # never O_CREAT: a key that is not there is unknown, as in /proc/sys
            fd = os.open(os.path.join(proc_sys, path), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, (s.value + "\n").encode())   # one write, as the kernel wants
            finally:
                os.close(fd)
            written += 1
        except OSError as e:
            if not s.ignore_failure:
                why = "unknown key" if e.errno == errno.ENOENT else e.strerror
                problems.append(f"{s.where}: {path.translate(_SWAP) if s.is_glob else s.key}: "
                                f"{why}")
    for p in problems:
        logs.error(p)
    if written:
        logs.say(f"sysctl: {written} kernel settings")
    return problems
