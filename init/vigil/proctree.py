"""Each unit's processes, read from /proc by vigil itself (`vigilctl tree`).

vigil reads its own /proc, so the pids are those of its PID namespace whatever namespace the
client runs in. A unit's processes are its main process and its descendants, and the members
of its process group that were reparented away from it (a double-forked daemon's children
land on vigil).
"""

import os


def process_table(proc: str = "/proc") -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, command line) for every process we can see."""
    out = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat") as f:
                stat = f.read()
            with open(f"{proc}/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        out[int(entry)] = (int(fields[1]), int(fields[2]), cmd or f"[{comm}]")
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
