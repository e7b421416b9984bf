"""Reading the machine's files under an import root, the way the machine itself would see
them: an absolute symlink means a path inside the root, not on the host running vigilctl.
"""

import os

from vigil import perms

MAX_LINKS = 40   # as the kernel's limit on symlinks in a path


class LinkProblem(Exception):
    pass


def inside(root: str, path: str) -> str:
    """The host path of a machine path."""
    return os.path.join(root, path.lstrip("/")) if root != "/" else path


def machine_path(root: str, host: str) -> str:
    """The machine path of a host path under root."""
    if root == "/":
        return host
    rel = os.path.relpath(host, root)
    return "/" + rel if rel != "." else "/"


def resolve(root: str, host: str) -> str | None:
    """Follow the symlinks of host (a path under root) inside root. Returns the final host
    path, or None when it ends at /dev/null (a mask); LinkProblem for a loop or a dangling
    link."""
    seen = 0
    path = host
    while True:
        try:
            target = os.readlink(path)
        except OSError:
            break   # not a link (or gone: the caller's open says so)
        seen += 1
        if seen > MAX_LINKS:
            raise LinkProblem("a loop of symbolic links")
        if target.startswith("/"):
            if target == "/dev/null":
                return None
            path = inside(root, target)
        else:
            path = os.path.normpath(os.path.join(os.path.dirname(path), target))
            if root != "/" and not (path + "/").startswith(root.rstrip("/") + "/"):
                # ../ past the root: the machine would stop at its own /
                path = inside(root, os.path.normpath("/" + os.path.relpath(path, root)))
    if not os.path.lexists(path):
        raise LinkProblem(f"a dangling symbolic link (to {machine_path(root, path)})")
    return path


def listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


class Unsafe(Exception):
    """A file that a user other than root could change (vigil.perms): not read."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def check(path: str) -> None:
    """Unsafe with the reason when a non-root user could write path or replace it."""
    why = perms.Checker().problem(path)
    if why:
        raise Unsafe(path, perms.refusal(why))


def read_bytes(path: str, limit: int = 8 << 20, trusted: bool = True) -> bytes:
    """At most limit + 1 bytes, so that the caller can tell a file is too big. trusted:
    what is read will run as root, so a file a non-root user could write is Unsafe."""
    if trusted:
        check(path)
    with open(path, "rb") as f:
        return f.read(limit + 1)


def read_lines(root: str, path: str) -> list[str]:
    try:
        with open(inside(root, path), encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20).splitlines()
    except OSError:
        return []


def passwd(root: str) -> tuple[dict, dict]:
    """(user -> (uid, gid, home, shell), gid -> group name) from the root's files."""
    users, groups = {}, {}
    for line in read_lines(root, "/etc/passwd"):
        f = line.split(":")
        if len(f) >= 7 and f[2].isdigit() and f[3].isdigit():
            users[f[0]] = (int(f[2]), int(f[3]), f[5], f[6])
    for line in read_lines(root, "/etc/group"):
        f = line.split(":")
        if len(f) >= 3 and f[2].isdigit():
            groups[int(f[2])] = f[0]
    return users, groups


def first_line(root: str, path: str) -> str:
    lines = read_lines(root, path)
    return lines[0].strip() if lines else ""
