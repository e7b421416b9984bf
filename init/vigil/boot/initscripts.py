"""What Debian's initscripts package (mountkernfs.sh, mountdevsubfs.sh, mountall.sh,
bootmisc.sh, the bootclean scripts) made at boot, that Debian's daemons still expect:

  * /run/lock: a tmpfs of its own (nodev, noexec, nosuid, 5 MiB, mode 1777), so locks
    cannot fill /run (mountkernfs: Debian's default RAMLOCK=yes); a directory with mode
    1777 if that mount fails;
  * /run/sendsigs.omit.d (mountkernfs), where daemons leave the pids to spare at shutdown;
  * links where nothing is: /run/shm -> /dev/shm (mountdevsubfs, Debian's default),
    /var/run -> /run and /var/lock -> /run/lock (mountall), /dev/fd, /dev/stdin,
    /dev/stdout, /dev/stderr (mountdevsubfs), /etc/mtab -> ../proc/self/mounts (checkroot);
  * /run/utmp owned by group utmp, mode 664 (bootmisc), so utempter, screen and tmux can
    write their entries;
  * /tmp cleaned as bootclean does, by TMPTIME of /etc/default/rcS: 0 (the default) removes
    everything, N days what nobody touched for longer, a negative number or `infinite`
    nothing (but stale X server locks); root's lost+found, quota files and journals stay;
    never across a mount point, never following a link, and never when /tmp is a tmpfs
    (new at each boot) or not world-writable.

Each step leaves alone what is already there (an initramfs's mount, an admin's directory
where a link would go). Pure parts: tmp_max_age, expired, kept.
"""

import errno
import fnmatch
import os
import stat
import time

from vigil import linux, logs
from vigil.boot import mounts, problem

RUN_LOCK_OPTIONS = "size=5242880,mode=1777"     # /etc/default/tmpfs: LOCK_SIZE, LOCK_MODE
DIRS = (("/run/sendsigs.omit.d", 0o755),)
LINKS = (("/run/shm", "/dev/shm"), ("/var/run", "/run"), ("/var/lock", "/run/lock"),
         ("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "fd/0"), ("/dev/stdout", "fd/1"),
         ("/dev/stderr", "fd/2"), ("/etc/mtab", "../proc/self/mounts"))
UTMP = "/run/utmp"
RCS = "/etc/default/rcS"
# bootclean's exceptions: these names at the top of /tmp stay when root owns them.
KEPT = ("lost+found", "quota.user", "aquota.user", "quota.group", "aquota.group",
        ".journal", ".sujournal", ".clean", "...security*")
DAY = 86400


def run_all(root: str = "/") -> list[str]:
    """Every step; returns the problems (each also logged)."""
    found = run_lock() + make_dirs(root) + make_links(root) + utmp_file(root)
    return found + clean_tmp(os.path.join(root, "tmp"), os.path.join(root, RCS.lstrip("/")))


def run_lock() -> list[str]:
    if "/run/lock" in mounts.current():
        return []
    try:
        os.makedirs("/run/lock", mode=0o755, exist_ok=True)
        linux.mount("tmpfs", "/run/lock", "tmpfs",
                    linux.MS_NODEV | linux.MS_NOEXEC | linux.MS_NOSUID, RUN_LOCK_OPTIONS)
        return []
    except OSError as e:
        logs.warn(f"/run/lock: no tmpfs of its own ({linux.why(e)}): a directory in /run")
    try:
        os.chmod("/run/lock", 0o1777)
    except OSError as e:
        return problem(f"/run/lock: {e.strerror}")
    return []


def make_dirs(root: str = "/") -> list[str]:
    problems = []
    for path, mode in DIRS:
        try:
            os.makedirs(os.path.join(root, path.lstrip("/")), mode=mode, exist_ok=True)
        except OSError as e:
            problems += problem(f"{path}: {e.strerror}")
    return problems


def make_links(root: str = "/") -> list[str]:
    """Each link where nothing is (a directory or another link there is the admin's), in
    directories that exist."""
    problems = []
    for path, target in LINKS:
        full = os.path.join(root, path.lstrip("/"))
        if os.path.lexists(full) or not os.path.isdir(os.path.dirname(full)):
            continue
        try:
            os.symlink(target, full)
        except OSError as e:
            if e.errno == errno.EROFS:   # a read-only / chosen by the admin stays as it is
                logs.warn(f"link {path} -> {target}: {e.strerror}")
            else:
                problems += problem(f"link {path} -> {target}: {e.strerror}")
    return problems


def utmp_file(root: str = "/") -> list[str]:
    """/run/utmp, root:utmp 664 (vigil's boot record then goes into it)."""
    import grp
    path = os.path.join(root, UTMP.lstrip("/"))
    try:
        gid = grp.getgrnam("utmp").gr_gid
    except KeyError:
        gid = -1   # no utmp group: root's, as vigil makes it anyway
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o664)
        try:
            os.fchown(fd, -1, gid)
            os.fchmod(fd, 0o664)
        finally:
            os.close(fd)
    except OSError as e:
        return problem(f"{UTMP}: {e.strerror}")
    return []


# --- /tmp ------------------------------------------------------------------------------------

def tmp_max_age(rcs_text: str) -> tuple[int | None, str | None]:
    """TMPTIME from /etc/default/rcS -> (days, problem): 0 removes all, None nothing. Pure."""
    from vigil.boot.settings import parse_env_file
    value = parse_env_file(rcs_text, {"TMPTIME"}).get("TMPTIME", "0").strip()
    if value.startswith("-") or value in ("infinite", "infinity"):
        return None, None
    if not value.isdigit():
        return None, f"{RCS}: TMPTIME={value} is not a number of days; /tmp not cleaned"
    return int(value), None


def expired(st: os.stat_result, days: int, now: float) -> bool:
    """find's `-mtime +N -ctime +N [-atime +N]`: every time (atime not for a directory)
    more than N whole days ago. Pure."""
    if days == 0:
        return True
    times = [st.st_mtime, st.st_ctime]
    if not stat.S_ISDIR(st.st_mode):
        times.append(st.st_atime)
    return all(now - t >= (days + 1) * DAY for t in times)


def kept(relative: str, st: os.stat_result) -> bool:
    """bootclean's exceptions, at the top of /tmp and owned by root. Pure."""
    return st.st_uid == 0 and any(fnmatch.fnmatchcase(relative, k) for k in KEPT)


def clean_tmp(tmp: str = "/tmp", rcs: str = RCS, now: float | None = None) -> list[str]:
    from vigil.files import read_text
    top = os.path.realpath(tmp)   # /tmp may be a link to the real place
    try:
        st = os.stat(top)
    except OSError:
        return []
    fstype = mounts.current().get(top, ("", "", ""))[1]
    if not stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o002 or fstype == "tmpfs":
        return []
    for name in os.listdir(top):
        if fnmatch.fnmatchcase(name, ".X*-lock"):   # a dead X server's: always removed
            _remove(os.path.join(top, name))
    days, bad = tmp_max_age(read_text(rcs))
    if bad:
        return problem(bad)
    if days is None:
        return []
    now = time.time() if now is None else now
    # As bootclean's two finds: everything but directories, then the directories left
    # empty; a directory is judged by its times once its files are gone.
    failed = sum(not _remove(p) for p, s in _walk(top, st.st_dev, files=True)
                 if expired(s, days, now) and not kept(os.path.relpath(p, top), s))
    for path, s in reversed(list(_walk(top, st.st_dev, files=False))):
        if expired(s, days, now) and not kept(os.path.relpath(path, top), s):
            try:
                os.rmdir(path)
            except OSError:
                pass   # not empty: something in it is kept or still young
    if failed:
        logs.warn(f"cleaning {tmp}: {failed} entries could not be removed")
    return []


def _walk(top: str, device: int, files: bool):
    """(path, lstat) of each non-directory (files=True) or directory below top, parents
    before children; links are not followed and other file systems not entered."""
    for dirpath, dirnames, filenames in os.walk(top):
        below = []
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != device:
                    continue
                below.append(name)
                if not files:
                    yield path, st
            elif files:
                yield path, st
        dirnames[:] = below


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False
