"""vigilctl: the client of the control socket, and the sysvinit command names.

    vigilctl [--socket PATH] [--json] VERB [ARGS]

Exit status: 0 ok, 1 error, 2 usage, 3 unit not running, 4 no such unit.
"""

import argparse
import json
import os
import sys
import time

from vigil import control

DEFAULT_SOCKET = "/run/vigil/control"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_NO_UNIT = 0, 1, 2, 3, 4
COLOURS = {"running": "32", "done": "36", "failed": "31;1", "starting": "33",
           "stopping": "33", "stopped": "2"}


class CtlError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def ask(socket_path: str, verb: str, args: list[str]):
    try:
        reply = control.request(socket_path, verb, args)
    except FileNotFoundError:
        raise CtlError(f"cannot reach vigil: {socket_path} does not exist") from None
    except OSError as e:
        raise CtlError(f"cannot reach vigil at {socket_path}: {e.strerror or e}") from None
    except ValueError:
        raise CtlError("vigil sent a reply that is not JSON") from None
    if not reply.get("ok"):
        raise CtlError(reply.get("error", "unknown error"), reply.get("code", EXIT_ERROR))
    return reply.get("result")


# --- human output ---------------------------------------------------------------
def _paint(state: str, tty: bool) -> str:
    code = COLOURS.get(state)
    return f"\033[{code}m{state}\033[0m" if tty and code else state


def _ago(since: float | None) -> str:
    if not since:
        return "-"
    s = max(0, int(time.time() - since))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}min ago"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d} ago"
    return f"{s // 86400}d ago"


def print_table(rows: list[dict], tty: bool) -> None:
    header = ("UNIT", "STATE", "PID", "RESTARTS", "SINCE", "WHY")
    table = [(r["name"], r["state"], str(r.get("pid") or "-"), str(r.get("restarts", 0)),
              _ago(r.get("since")), r.get("reason") or "") for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h)
              for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for t in table:
        cells = [t[0].ljust(widths[0]), _paint(t[1], tty) + " " * (widths[1] - len(t[1]))]
        cells += [c.ljust(w) for c, w in zip(t[2:], widths[2:], strict=True)]
        print("  ".join(cells).rstrip())


def print_status(info: dict, tty: bool) -> None:
    title = info["name"] + (f" - {info['description']}" if info.get("description") else "")
    print(title)
    when = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
            + f" ({_ago(info['since'])})") if info.get("since") else "-"
    lines = [("state", f"{_paint(info['state'], tty)} since {when}"),
             ("why", info.get("reason") or ""),
             ("pid", str(info.get("pid") or "-")),
             ("restarts", str(info.get("restarts", 0))),
             ("last exit", info.get("last_exit") or "-"),
             ("status", info.get("status") or ""),
             ("type", info.get("type") or ""),
             ("exec", " ".join(info.get("exec") or [])),
             ("requires", ", ".join(info.get("requires") or [])),
             ("after", ", ".join(info.get("after") or [])),
             ("log", info.get("log") or ""),
             ("log problem", info.get("log_error") or ""),
             ("file", info.get("path") or "")]
    if info.get("dropped_lines"):
        lines.append(("dropped", f"{info['dropped_lines']} log lines"))
    for key, value in lines:
        if value:
            print(f"  {key + ':':<12} {value}")


# --- verbs that work on the client side ------------------------------------------
def cmd_check(dirs: list[str], as_json: bool) -> int:
    from vigil import graph
    from vigil.unit import UNIT_DIRS, Catalog
    catalog = Catalog(dirs or UNIT_DIRS)
    after = graph.ordering(catalog.units)
    cycles = graph.break_cycles(after)
    missing = sorted({(n, w) for n, u in catalog.units.items() for w in u.wants
                      if catalog.get(w) is None})
    if as_json:
        print(json.dumps({"units": sorted(catalog.units), "templates": sorted(catalog.templates),
                          "errors": [str(e) for _, e in sorted(catalog.errors.items())],
                          "cycles": cycles}, indent=2))
    else:
        for _, err in sorted(catalog.errors.items()):
            print(f"error: {err}")
        for cycle in cycles:
            print("warning: ordering cycle " + " -> ".join(cycle))
        for name, want in missing:
            print(f"note: {name} wants {want}, which does not exist (ignored)")
        print(f"{len(catalog.units)} units, {len(catalog.templates)} templates, "
              f"{len(catalog.errors)} errors")
    return EXIT_ERROR if catalog.errors else EXIT_OK


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, command line) for every process we can see."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        out[int(entry)] = (int(fields[1]), int(fields[2]), cmd or f"[{comm}]")
    return out


def cmd_tree(rows: list[dict]) -> int:
    procs = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _pgid, _cmd) in procs.items():
        children.setdefault(ppid, []).append(pid)

    def show(pid: int, depth: int, shown: set[int]) -> None:
        shown.add(pid)
        print("  " * depth + f"{pid} {procs[pid][2]}")
        for child in sorted(children.get(pid, [])):
            show(child, depth + 1, shown)

    for row in rows:
        print(f"{row['name']} ({row['state']})")
        pid = row.get("pid")
        if pid and pid in procs:
            shown: set[int] = set()
            show(pid, 1, shown)
            # its process group members that were reparented away from the main process
            for other, (_ppid, pgid, _cmd) in sorted(procs.items()):
                if pgid == procs[pid][1] and other not in shown:
                    show(other, 1, shown)
    return EXIT_OK


def _log_files(path: str, keep: int) -> list[str]:
    rotated = [f"{path}.{k}" for k in range(keep, 0, -1)]
    return [p for p in rotated + [path] if os.path.exists(p)]


def cmd_logs(sock: str, unit: str, lines: int, follow: bool) -> int:
    info = ask(sock, "logs", [unit])
    tail: list[str] = []
    for path in _log_files(info["path"], info["keep"]):
        try:
            with open(path, errors="replace") as f:
                tail.extend(f.read().splitlines())
        except OSError as e:
            raise CtlError(f"{path}: {e.strerror}") from None
        tail = tail[-lines:] if lines else tail
    tail.extend(info["memory"])
    for line in (tail[-lines:] if lines else tail):
        print(line)
    if info.get("error"):
        print(f"vigilctl: log not written to disk yet: {info['error']}", file=sys.stderr)
    if not follow:
        return EXIT_OK
    sys.stdout.flush()
    return _follow(info["path"])


def _follow(path: str) -> int:
    """tail -F: print what is appended, reopening the file when it is rotated."""
    f = open(path, errors="replace")
    f.seek(0, os.SEEK_END)
    inode = os.fstat(f.fileno()).st_ino
    try:
        while True:
            line = f.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
                continue
            time.sleep(0.2)
            try:
                if os.stat(path).st_ino != inode:
                    f.close()
                    f = open(path, errors="replace")
                    inode = os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                pass
    except KeyboardInterrupt:
        return EXIT_OK


# --- the sysvinit names ------------------------------------------------------------
def sysv_main(name: str, argv: list[str]) -> int:
    """poweroff, reboot, halt: ask vigil (or with -f, call reboot(2) at once)."""
    if name in ("poweroff", "reboot", "halt"):
        action = "poweroff" if name == "halt" and "-p" in argv else name
        if "-f" in argv or "--force" in argv:
            from vigil import linux
            os.sync()
            cmd = {"poweroff": linux.RB_POWER_OFF, "reboot": linux.RB_AUTOBOOT,
                   "halt": linux.RB_HALT_SYSTEM}[action]
            linux.reboot(cmd)
            return EXIT_OK
        ask(os.environ.get("VIGIL_SOCKET", DEFAULT_SOCKET), action, [])
        return EXIT_OK
    print(f"{name}: not supported yet", file=sys.stderr)
    return EXIT_ERROR


# --- main ----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vigilctl", description="Control vigil.")
    p.add_argument("--socket", default=os.environ.get("VIGIL_SOCKET", DEFAULT_SOCKET),
                   help="control socket (default $VIGIL_SOCKET or %(default)s)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    sub.add_parser("list", help="every unit, one line each")
    sub.add_parser("status", help="the state of units and why").add_argument(
        "units", nargs="*")
    for verb in ("start", "stop", "restart"):
        sub.add_parser(verb, help=f"{verb} units").add_argument("units", nargs="+")
    sub.add_parser("reload", help="re-read the unit files")
    logs_p = sub.add_parser("logs", help="a unit's output")
    logs_p.add_argument("unit")
    logs_p.add_argument("-n", type=int, default=20, help="lines (0 = all; default 20)")
    logs_p.add_argument("-f", action="store_true", help="follow")
    for verb in ("poweroff", "reboot", "halt"):
        sub.add_parser(verb, help=f"stop everything and {verb}")
    sub.add_parser("check", help="validate unit directories offline").add_argument(
        "dirs", nargs="*")
    sub.add_parser("tree", help="each unit's processes")
    sub.add_parser("dump", help="effective configuration and state")
    sub.add_parser("analyze", help="time from start to ready, slowest first")
    sub.add_parser("version", help="vigil's version and protocol")
    return p


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    tty = sys.stdout.isatty()
    if args.verb == "check":
        return cmd_check(args.dirs, args.json)
    if args.verb == "logs":
        return cmd_logs(args.socket, args.unit, args.n, args.f)
    if args.verb == "tree":
        return cmd_tree(ask(args.socket, "list", []))
    if args.verb == "status" and args.units:
        result = ask(args.socket, "status", args.units)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for i, info in enumerate(result):
                if i:
                    print()
                print_status(info, tty)
        return EXIT_OK if all(i["state"] == "running" for i in result) else EXIT_NOT_RUNNING
    verb_args = getattr(args, "units", None) or []
    result = ask(args.socket, args.verb, verb_args)
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.verb == "list":
        print_table(result, tty)
    elif args.verb == "status":
        print_table(result["units"], tty)
        for key, problem in sorted(result["problems"].items()):
            print(f"problem: {key}: {problem}")
        for cycle in result["cycles"]:
            print("cycle broken: " + " -> ".join(cycle))
    elif args.verb in ("start", "stop", "restart"):
        for info in result:
            print(f"{info['name']}: {_paint(info['state'], tty)} {info.get('reason') or ''}")
    elif args.verb == "analyze":
        for row in result:
            print(f"{row['ready_after']:9.3f}s  {row['name']}")
    elif args.verb == "reload":
        for key in ("added", "removed", "changed"):
            if result[key]:
                print(f"{key}: {', '.join(result[key])}")
        for err in result["invalid"]:
            print(f"invalid (old definition kept): {err}")
    else:
        print(json.dumps(result, indent=2) if not isinstance(result, str) else result)
    return EXIT_OK


def main() -> int:
    name = os.path.basename(sys.argv[0])
    try:
        if name in ("poweroff", "reboot", "halt", "shutdown", "telinit", "runlevel"):
            return sysv_main(name, sys.argv[1:])
        return run(sys.argv[1:])
    except CtlError as e:
        print(f"vigilctl: {e}", file=sys.stderr)
        return e.code
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
