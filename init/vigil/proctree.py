"""Each unit's processes, read from /proc by vigil itself (`vigilctl tree`).

vigil reads its own /proc, so the pids are those of its PID namespace whatever namespace the
client runs in. A unit's processes are its main process and its descendants, and the members
of its process group that were reparented away from it (a double-forked daemon's children
land on vigil).
"""

import os


def _each(proc: str, names: tuple[str, ...]):
    """(pid, [contents of each named file]) for every process, as bytes; a process that
    ends while it is read is left out."""
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            texts = []
            for name in names:
                with open(f"{proc}/{entry}/{name}", "rb") as f:
                    texts.append(f.read())
        except OSError:
            continue
        yield int(entry), texts


def _after_comm(stat: bytes) -> list[bytes]:
    """The fields of /proc/PID/stat after "(comm)" (which may hold spaces and parentheses):
    [0] is the state, [1] the ppid, [2] the pgid, [3] the session, [19] the start time."""
    return stat[stat.rfind(b")") + 2:].split()


def process_table(proc: str = "/proc") -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, command line) for every process we can see."""
    out = {}
    for pid, (stat, cmdline) in _each(proc, ("stat", "cmdline")):
        fields = _after_comm(stat)
        cmd = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        comm = stat[stat.find(b"(") + 1:stat.rfind(b")")].decode(errors="replace")
        out[pid] = (int(fields[1]), int(fields[2]), cmd or f"[{comm}]")
    return out


def unit_tree(pid: int, procs: dict[int, tuple[int, int, str]]) -> list[list]:
    """[pid, depth, command line] rows of a unit's processes, parents before children."""
    if not pid or pid not in procs:
        return []
    children: dict[int, list[int]] = {}
    for p, (ppid, _pgid, _cmd) in procs.items():
        children.setdefault(ppid, []).append(p)
    rows: list[list] = []
    shown: set[int] = set()

    def walk(p: int, depth: int) -> None:
        shown.add(p)
        rows.append([p, depth, procs[p][2]])
        for child in sorted(children.get(p, [])):
            walk(child, depth + 1)

    walk(pid, 0)
    group = procs[pid][1]
    for other, (_ppid, pgid, _cmd) in sorted(procs.items()):
        if pgid == group and group > 0 and other not in shown:
            walk(other, 0)
    return rows


def stat_table(proc: str = "/proc") -> dict[int, tuple[int, int, int, int]]:
    """pid -> (ppid, pgid, session, start time) for every process: /proc/PID/stat alone,
    one small read each, so a stop can afford it."""
    out = {}
    for pid, (stat,) in _each(proc, ("stat",)):
        fields = _after_comm(stat)
        out[pid] = (int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))
    return out


class Snapshot:
    """The process table at one moment, indexed by parent, group and session."""

    def __init__(self, proc: str = "/proc"):
        self.table = stat_table(proc)
        self.children: dict[int, list[int]] = {}
        self.groups: dict[int, set[int]] = {}
        self.sessions: dict[int, set[int]] = {}
        for p, (ppid, pgid, sid, _start) in self.table.items():
            self.children.setdefault(ppid, []).append(p)
            self.groups.setdefault(pgid, set()).add(p)
            self.sessions.setdefault(sid, set()).add(p)

    def started(self, pid: int) -> int | None:
        """When pid started (to tell it from a later process given the same pid)."""
        entry = self.table.get(pid)
        return entry[3] if entry else None

    def strays(self, pid: int, pgid: int) -> dict[int, int]:
        """A service's processes that its process group no longer holds (pid -> start
        time): descendants of its main process or of its group's or session's members that
        moved to a group or session of their own (setsid, setpgid), and their descendants.
        Without cgroups this is what vigil can know: a process that both left the session
        and lost its parent (so it was reparented to vigil) has no link left to the
        service."""
        group = self.groups.get(pgid, set()) if pgid else set()
        todo = list(group | (self.sessions.get(pgid, set()) if pgid else set())
                    | ({pid} if pid in self.table else set()))
        seen = set(todo)
        while todo:
            for child in self.children.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return {p: self.table[p][3] for p in seen - group - {pid, os.getpid()}}
