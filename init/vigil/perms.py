"""Who could change what vigil runs as root: a unit file, drop-in, init.d script or inittab
that a user other than root could write, directly or by replacing it through a directory
on its path up to /, is refused, as sudo refuses such a sudoers file.

Trusted owners are root and the user vigil runs as (a user session's vigil runs that
user's units). Group write is trusted only for group 0. A world-writable directory with
the sticky bit (/tmp) is fine: others cannot rename or remove what root owns in it, and
the next component on the path is checked in its turn.
"""

import os
import stat

TRUSTED_UIDS = frozenset({0, os.geteuid()})


class Checker:
    """One per reading of the unit directories: directories are looked at once each."""

    def __init__(self):
        self._dirs: dict[str, str] = {}

    def problem(self, path: str) -> str:
        """"" when path is safe to run as root, else why not (for the error message)."""
        try:
            st = os.stat(path)
        except OSError:
            return ""  # the reader says it cannot read it
        why = _writable(st, "the file", path, directory=False)
        if why:
            return why
        lexical = os.path.dirname(os.path.abspath(path))
        real = os.path.dirname(os.path.realpath(path))
        for d in dict.fromkeys((lexical, real)):  # a link's directory and its target's
            why = self._chain(d)
            if why:
                return why
        return ""

    def _chain(self, directory: str) -> str:
        if directory in self._dirs:
            return self._dirs[directory]
        parent = os.path.dirname(directory)
        why = self._chain(parent) if parent != directory else ""
        if not why:
            try:
                why = _writable(os.stat(directory), "the directory", directory,
                                directory=True)
            except OSError:
                why = ""
        self._dirs[directory] = why
        return why


def _writable(st: os.stat_result, what: str, path: str, directory: bool) -> str:
    """Who besides root could write this file or directory, as a reason, or ""."""
    shown = "" if what == "the file" else f" {path}"
    if st.st_uid not in TRUSTED_UIDS:
        return f"{what}{shown} is owned by {_user(st.st_uid)}, not root"
    sticky = directory and st.st_mode & stat.S_ISVTX
    if st.st_mode & stat.S_IWOTH and not sticky:
        return f"{what}{shown} is writable by every user"
    if st.st_mode & stat.S_IWGRP and st.st_gid != 0 and not sticky:
        return f"{what}{shown} is writable by group {_group(st.st_gid)}"
    return ""


def refusal(why: str) -> str:
    return f"refused: {why} (that user could run anything as root through it)"


def _name(lookup, number: int) -> str:
    """The name the passwd or group file gives a number, or "" when it has none."""
    try:
        return lookup(number)[0]
    except KeyError:
        return ""


def _user(uid: int) -> str:
    import pwd
    name = _name(pwd.getpwuid, uid)
    return f"user {name} (uid {uid})" if name else f"uid {uid}"


def _group(gid: int) -> str:
    import grp
    name = _name(grp.getgrgid, gid)
    return f"{name} (gid {gid})" if name else f"gid {gid}"
