"""vigilctl: the client of the control socket, and the sysvinit command names.

    vigilctl [--socket PATH] [--json] VERB [ARGS]

Exit status: 0 ok, 1 error, 2 usage, 3 unit not running, 4 no such unit.
"""

import os
import sys
import time

from vigil import client, protocol, term
from vigil.term import escape

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
        reply = client.request(socket_path, verb, args)
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
# Every string that comes from vigil's reply or from a file (unit names, why texts,
# STATUS=, paths, log lines) goes through escape() before it is printed.
def _paint(state: str, colour: bool) -> str:
    return term.paint(escape(state), COLOURS.get(state), colour)


def _json(value) -> str:
    """--json output (json is imported only then: it is the slow part of a start)."""
    import json
    return json.dumps(value, indent=2)


def _why(row: dict) -> str:
    return escape((row.get("why") or {}).get("text", ""))


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
    # FROM: where the unit came from (toml, systemd, init.d, inittab)
    header = ("UNIT", "STATE", "FROM", "PID", "RESTARTS", "SINCE", "WHY")
    table = [(escape(r["name"]), escape(r["state"]), escape(r.get("origin") or "-"),
              str(r.get("pid") or "-"), str(r.get("restarts", 0)), _ago(r.get("since")),
              _why(r)) for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h)
              for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for t in table:
        cells = [t[0].ljust(widths[0]),
                 term.paint(t[1], COLOURS.get(t[1]), tty) + " " * (widths[1] - len(t[1]))]
        cells += [c.ljust(w) for c, w in zip(t[2:], widths[2:], strict=True)]
        print("  ".join(cells).rstrip())


def pending_mounts(rows: list[dict]) -> list[str]:
    """A line for each mount unit still waiting for its device, and what waits for it;
    one for each swap unit still waiting (nothing waits for swap)."""
    waiting: dict[str, list[str]] = {}
    for r in rows:
        why = r.get("why") or {}
        if why.get("kind") == "waiting" and str(why.get("unit", "")).endswith(".mount"):
            waiting.setdefault(why["unit"], []).append(r["name"])
    lines = []
    for r in rows:
        if r["state"] != "starting":
            continue
        if r["name"].endswith(".mount"):
            waiters = ", ".join(sorted(waiting.get(r["name"], []))) or "nothing yet"
            lines.append(f"mount pending: {r['name']}: {r.get('status') or _why(r)}; "
                         f"waited for by {waiters}")
        elif r["name"].endswith(".swap"):
            lines.append(f"swap pending: {r['name']}: {r.get('status') or _why(r)}")
    return lines


def print_status(info: dict, tty: bool) -> None:
    title = info["name"] + (f" - {info['description']}" if info.get("description") else "")
    print(escape(title))
    when = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
            + f" ({_ago(info['since'])})") if info.get("since") else "-"
    lines = [("state", f"{_paint(info['state'], tty)} since {when}"),
             ("why", (info.get("why") or {}).get("text", "")),
             ("rejected", f"new file rejected, the old definition runs: {info['rejected']}"
              if info.get("rejected") else ""),
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
            value = value if key == "state" else escape(value)  # state: painted, escaped
            print(f"  {key + ':':<12} {value}")


# --- verbs that work on the client side ------------------------------------------
def _import_args(args: list[str], verb: str) -> tuple[list[str], str | None, bool]:
    """(plain arguments, --import-root DIR given or None, whether it was given)."""
    rest, root, given = [], None, False
    i = 0
    while i < len(args):
        if args[i] == "--import-root":
            if i + 1 >= len(args):
                raise CtlError(f"{verb}: --import-root needs a directory", EXIT_USAGE)
            root, given, i = args[i + 1], True, i + 2
            continue
        if args[i].startswith("--import-root="):
            root, given = args[i].split("=", 1)[1], True
        else:
            rest.append(args[i])
        i += 1
    return rest, root, given


def _say(line: str) -> None:
    print(escape(line))


def cmd_check(args: list[str], as_json: bool) -> int:
    from vigil import graph
    from vigil.unit import UNIT_DIRS, Catalog
    dirs, root, given = _import_args(args, "check")
    if not dirs and not given:
        root = "/"   # as vigil does at boot: its own units, then the machine's
    catalog = Catalog(dirs or UNIT_DIRS, import_root=root)
    after = graph.ordering(catalog.units)
    cycles = graph.break_cycles(after)
    missing = sorted({(n, w) for n, u in list(catalog.units.items()) for w in u.wants
                      if catalog.get(w) is None})
    imported = {n: u for n, u in catalog.units.items() if u.origin != "toml"}
    from vigil import checks
    # programs are looked for on this machine, where vigil runs them (an import root is
    # only where the unit files are read)
    bad_programs, later_programs = checks.program_problems(
        catalog.units, checks.mount_points(root, catalog.units))
    failed = bool(catalog.errors or bad_programs)
    if as_json:
        import json
        print(json.dumps({
            "units": sorted(catalog.units), "templates": sorted(catalog.templates),
            "errors": [str(e) for _, e in sorted(catalog.errors.items())], "cycles": cycles,
            "imported": {n: {"origin": u.origin, "path": u.path, "enabled": u.enabled,
                             "masked": u.masked, "notes": [list(x) for x in u.notes]}
                         for n, u in sorted(imported.items())},
            "aliases": catalog.aliases, "shadowed": catalog.shadowed,
            "skipped": catalog.skipped, "masks": catalog.masks,
            "no_header": catalog.no_header, "handled": catalog.handled,
            "ignored": catalog.ignored, "warnings": catalog.warnings + later_programs,
            "programs": bad_programs}, indent=2))
        return EXIT_ERROR if failed else EXIT_OK
    for _, err in sorted(catalog.errors.items()):
        _say(f"error: {err}")
    for text in bad_programs:
        _say(f"error: {text}")
    for text in later_programs:
        _say(f"warning: {text}")
    for cycle in cycles:
        _say("warning: ordering cycle " + " -> ".join(cycle))
    for text in catalog.warnings:
        _say(f"warning: {text}")
    for name, want in missing:
        _say(f"note: {name} wants {want}, which does not exist (ignored)")
    for _name, unit in sorted(imported.items()):
        for path, line, text in unit.notes:
            _say(f"note: {path}:{line}: {text}" if line else f"note: {path}: {text}")
    for name, paths in sorted(catalog.shadowed.items()):
        _say(f"shadowed: {name}: used {paths[0]}, shadowed {', '.join(paths[1:])}")
    for name, (path, why) in sorted(catalog.skipped.items()):
        _say(f"skipped: {name} ({path}): {why}")
    for name, link in sorted(catalog.masks.items()):
        _say(f"masked: {name} ({link} -> /dev/null): never started")
    for path, why in catalog.no_header:
        _say(f"not started: {path}: {why}")
    for path, line, text in catalog.handled:
        _say(f"handled by vigil: {path}:{line}: {text}")
    if catalog.ignored:
        _say(f"ignored: {len(catalog.ignored)} .socket, .timer, .path, .mount... unit files "
              "(out of scope)")
    counts = {o: sum(u.origin == o for u in imported.values())
              for o in ("systemd", "init.d", "inittab")}
    _say(f"{len(catalog.units)} units ({', '.join(f'{v} from {k}' for k, v in counts.items())};"
          f" {sum(u.enabled for u in catalog.units.values())} enabled), "
          f"{len(catalog.templates)} templates, {len(catalog.errors) + len(bad_programs)} "
          "errors")
    return EXIT_ERROR if failed else EXIT_OK


def cmd_convert(args: list[str]) -> int:
    from vigil.translate import convert
    from vigil.unit import Catalog
    rest, root, _given = _import_args(args, "convert")
    usage = "usage: vigilctl convert FILE | --all -o DIR [--import-root DIR]"
    catalog = Catalog([], import_root=root or "/")
    try:
        if rest[:1] == ["--all"]:
            if len(rest) != 3 or rest[1] != "-o":
                raise CtlError(usage, EXIT_USAGE)
            for line in convert.convert_all(catalog, rest[2]):
                print(line)
            return EXIT_OK
        if len(rest) != 1 or rest[0].startswith("-"):
            raise CtlError(usage, EXIT_USAGE)
        for i, (_name, text) in enumerate(convert.convert_file(catalog, rest[0])):
            print(("\n" if i else "") + text, end="")
    except convert.ConvertError as e:
        raise CtlError(str(e)) from None
    return EXIT_OK


def cmd_tree(rows: list[dict]) -> int:
    for row in rows:
        _say(f"{row['name']} ({row['state']})")
        for pid, depth, cmd in row["processes"]:
            print("  " * (depth + 1) + f"{pid} {escape(cmd)}")
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
        print(escape(line, keep="\t"))
    if info.get("error"):
        print(f"vigilctl: log not written to disk yet: {escape(info['error'])}",
              file=sys.stderr)
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
                sys.stdout.write(escape(line.rstrip("\n"), keep="\t")
                                 + ("\n" if line.endswith("\n") else ""))
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
SYSV_USAGE = {
    "poweroff": "usage: poweroff [-f] [-w] [--no-wall]",
    "reboot": "usage: reboot [-f] [-w] [--no-wall]",
    "halt": "usage: halt [-p] [-f] [-w] [--no-wall]",
    "shutdown": "usage: shutdown [-h|-P|-H|-r] [-k] [-c] [--no-wall] [now|+MIN|HH:MM] [MESSAGE]",
    "telinit": "usage: telinit 0|1|S|2|3|4|5|6|q|u",
    "runlevel": "usage: runlevel",
}


def _socket() -> str:
    return os.environ.get("VIGIL_SOCKET", DEFAULT_SOCKET)


def _when(word: str, now: float) -> float:
    """shutdown's time: now, +MINUTES or HH:MM (the next such time of day)."""
    if word == "now":
        return now
    if word.startswith("+") and word[1:].isdigit():
        return now + 60 * int(word[1:])
    hh, sep, mm = word.partition(":")
    if sep and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60:
        t = time.localtime(now)
        target = time.mktime((t.tm_year, t.tm_mon, t.tm_mday, int(hh), int(mm), 0, 0, 0, -1))
        return target if target > now else target + 86400
    raise CtlError(f"invalid time {word!r} (now, +MINUTES or HH:MM)", EXIT_USAGE)


def _reboot_now(action: str) -> int:
    from vigil import linux
    os.sync()
    linux.reboot(linux.REBOOT_COMMANDS[action])
    return EXIT_OK


def sysv_main(name: str, argv: list[str]) -> int:
    flags = {a for a in argv if a.startswith("-")}
    words = [a for a in argv if not a.startswith("-")]
    if "--help" in flags:
        print(SYSV_USAGE[name])
        return EXIT_OK
    if name in ("poweroff", "reboot", "halt"):
        action = "poweroff" if name == "halt" and "-p" in flags else name
        if "-w" in flags or "--wtmp-only" in flags:
            from vigil import utmp
            utmp.write_shutdown("0" if action != "reboot" else "6")
            return EXIT_OK
        if "-f" in flags or "--force" in flags:
            return _reboot_now(action)
        ask(_socket(), action, [] if "--no-wall" not in flags else ["--no-wall"])
        return EXIT_OK
    if name == "shutdown":
        return shutdown_main(flags, words)
    if name == "telinit":
        return telinit_main(words)
    if name == "runlevel":
        from vigil import utmp
        level = utmp.current_runlevel(utmp.read())
        if level is None:
            print("unknown")
            return EXIT_ERROR
        print(*level)
        return EXIT_OK
    raise CtlError(f"{name}: unknown command name", EXIT_USAGE)


def shutdown_main(flags: set[str], words: list[str]) -> int:
    sock = _socket()
    if "-c" in flags:
        ask(sock, "cancel", [])
        print("Shutdown cancelled.")
        return EXIT_OK
    action = "reboot" if "-r" in flags else "halt" if "-H" in flags else "poweroff"
    now = time.time()
    when = _when(words[0], now) if words else now + 60  # no time: one minute, as systemd does
    message = " ".join(words[1:])
    if "-k" in flags:  # warn only
        from vigil import utmp
        utmp.wall(message or f"The system is going down for {action} (not really).")
        return EXIT_OK
    wall = "0" if "--no-wall" in flags else "1"
    ask(sock, "schedule", [action, str(int(when)), wall, *message.split()])
    if when > now:
        at = time.strftime("%a %Y-%m-%d %H:%M:%S", time.localtime(when))
        print(f"Shutdown ({action}) scheduled for {at}, use 'shutdown -c' to cancel.")
    return EXIT_OK


def telinit_main(words: list[str]) -> int:
    if len(words) != 1:
        raise CtlError(SYSV_USAGE["telinit"], EXIT_USAGE)
    level = words[0]
    sock = _socket()
    if level in ("0", "6"):
        ask(sock, "poweroff" if level == "0" else "reboot", [])
    elif level in ("q", "Q"):
        ask(sock, "reload", [])
    elif level in ("2", "3", "4", "5"):
        ask(sock, "default", [])  # vigil has one normal state: every level from 2 to 5 is it
    elif level in ("u", "U"):
        ask(sock, "reexec", [])
    elif level in ("1", "s", "S"):
        ask(sock, "rescue", [])
    else:
        raise CtlError(f"telinit: unknown run level {level!r}", EXIT_USAGE)
    return EXIT_OK


# --- main ----------------------------------------------------------------------
USAGE = """usage: vigilctl [--socket PATH] [--json] [--no-pager] VERB [ARGS]

  list                     every unit, one line each
  status [UNIT...]         the state of units, and why
  start|stop|restart UNIT...
  reload [UNIT...]         re-read the unit files; with units: reload those services
  logs UNIT [-n N] [-f]    a unit's output (default 20 lines; -n 0 for all)
  check [DIR...] [--import-root DIR]
                           validate unit directories offline (and the systemd units,
                           init.d scripts and inittab vigil imports from / or DIR)
  convert FILE | --all -o DIR [--import-root DIR]
                           a systemd unit, init.d script or inittab as vigil TOML
  tree                     each unit's processes
  dump                     effective configuration and state
  analyze                  time from start request to ready, slowest first
  analyze blame            units and boot steps by their own time to ready
  analyze critical-chain [UNIT]
                           what UNIT (default: the last unit ready) waited for
  analyze plot             the boot as an SVG chart (vigilctl analyze plot > boot.svg)
  poweroff|reboot|halt     stop everything, then power off, reboot or halt
  version                  vigil's version and protocol

The socket is $VIGIL_SOCKET or /run/vigil/control. On a terminal, long output goes
through $VIGIL_PAGER, $PAGER or less (--no-pager: not), and states are coloured
(NO_COLOR=1: not).
Exit status: 0 ok, 1 error, 2 usage, 3 unit not running, 4 no such unit.
"""
# verb -> (fewest, most) arguments: the protocol's verbs, and those vigilctl does itself or
# whose words differ from the request it sends.
VERBS = {**{verb: (fewest, most) for verb, (fewest, most, _root) in protocol.VERBS.items()},
         "logs": (1, 4), "check": (0, None), "convert": (1, 5), "analyze": (0, 2)}
ANALYZE = {"blame": (0, 0), "critical-chain": (0, 1), "plot": (0, 0)}


def parse_args(argv: list[str]) -> tuple[dict, str, list[str]]:
    """A hand parser: vigilctl runs often (scripts, status bars), so it starts fast."""
    opts = {"socket": _socket(), "json": False, "pager": True}
    rest: list[str] = []
    words = iter(argv)
    for arg in words:
        if arg in ("-h", "--help"):
            print(USAGE, end="")
            raise SystemExit(EXIT_OK)
        if arg in ("--json", "--no-pager"):
            opts["json" if arg == "--json" else "pager"] = arg == "--json"
        elif arg == "--socket" or arg.startswith("--socket="):
            opts["socket"] = arg.split("=", 1)[1] if "=" in arg else next(words, "")
            if not opts["socket"]:
                raise CtlError("--socket needs a path\n" + USAGE, EXIT_USAGE)
        else:
            rest.append(arg)
    if not rest:
        raise CtlError("no verb given\n" + USAGE, EXIT_USAGE)
    verb, args = rest[0], rest[1:]
    if verb not in VERBS:
        raise CtlError(f"unknown verb {verb!r}\n" + USAGE, EXIT_USAGE)
    fewest, most = VERBS[verb]
    if len(args) < fewest or (most is not None and len(args) > most):
        raise CtlError(f"{verb}: wrong number of arguments\n" + USAGE, EXIT_USAGE)
    if verb == "analyze" and args:
        if args[0] not in ANALYZE:
            raise CtlError(f"analyze: unknown {args[0]!r} (blame, critical-chain [UNIT], "
                           "plot)", EXIT_USAGE)
        if len(args) - 1 > ANALYZE[args[0]][1]:
            raise CtlError(f"analyze {args[0]}: too many arguments", EXIT_USAGE)
    return opts, verb, args


def parse_logs_args(args: list[str]) -> tuple[str, int, bool]:
    unit, lines, follow = "", 20, False
    i = 0
    while i < len(args):
        if args[i] == "-f":
            follow = True
        elif args[i] == "-n" and i + 1 < len(args) and args[i + 1].isdigit():
            i += 1
            lines = int(args[i])
        elif not args[i].startswith("-") and not unit:
            unit = args[i]
        else:
            raise CtlError("usage: vigilctl logs UNIT [-n N] [-f]", EXIT_USAGE)
        i += 1
    if not unit:
        raise CtlError("usage: vigilctl logs UNIT [-n N] [-f]", EXIT_USAGE)
    return unit, lines, follow


def run(argv: list[str]) -> int:
    opts, verb, args = parse_args(argv)
    as_json, sock = opts["json"], opts["socket"]
    colour = term.colour_wanted()   # decided on the real stdout, before any pager
    if verb == "convert":
        return cmd_convert(args)
    if verb == "logs":
        unit, lines, follow = parse_logs_args(args)
        with term.Pager(opts["pager"] and not follow):
            return cmd_logs(sock, unit, lines, follow)
    if verb == "analyze" and args[:1] == ["plot"]:
        return cmd_analyze(ask(sock, "analyze", []), args, as_json, colour)
    with term.Pager(opts["pager"] and verb in PAGED):
        return _run(verb, args, as_json, sock, colour)


# The verbs whose output can be long: paged on a terminal.
PAGED = {"list", "status", "check", "tree", "dump", "analyze"}


def _run(verb: str, args: list[str], as_json: bool, sock: str, tty: bool) -> int:
    if verb == "check":
        return cmd_check(args, as_json)
    if verb == "tree":
        return cmd_tree(ask(sock, "tree", []))
    if verb == "analyze":
        return cmd_analyze(ask(sock, "analyze", []), args, as_json, tty)
    if verb == "status" and args:
        result = ask(sock, "status", args)
        if as_json:
            print(_json(result))
        else:
            for i, info in enumerate(result):
                if i:
                    print()
                print_status(info, tty)
        return EXIT_OK if all(i["state"] == "running" for i in result) else EXIT_NOT_RUNNING
    result = ask(sock, verb, args)
    if as_json:
        print(_json(result))
    elif verb == "list":
        print_table(result, tty)
    elif verb == "status":
        print_table(result["units"], tty)
        for key, problem in sorted(result["problems"].items()):
            _say(f"problem: {key}: {problem}")
        for cycle in result["cycles"]:
            _say("cycle broken: " + " -> ".join(cycle))
        for line in pending_mounts(result["units"]):
            _say(line)
        if result.get("scheduled"):
            sched = result["scheduled"]
            at = time.strftime("%H:%M:%S", time.localtime(sched["when"]))
            _say(f"scheduled: {sched['action']} at {at} {sched['message']}".rstrip())
    elif verb in ("start", "stop", "restart"):
        for info in result:
            print(f"{escape(info['name'])}: {_paint(info['state'], tty)} {_why(info)}".rstrip())
    elif verb == "reload" and args:
        for name, how in result.items():
            _say(f"{name}: reloading ({how})")
    elif verb == "reload":
        for key in ("added", "removed", "changed"):
            if result[key]:
                _say(f"{key}: {', '.join(result[key])}")
        for err in result["invalid"]:
            _say(f"invalid (old definition kept): {err}")
        for err in result.get("broken", []):
            _say(f"invalid (not loaded): {err}")
    else:
        print(_json(result) if not isinstance(result, str) else escape(result))
    return EXIT_OK


def cmd_analyze(reply: dict, args: list[str], as_json: bool, colour: bool) -> int:
    """analyze, analyze blame, analyze critical-chain [UNIT], analyze plot (vigil.analyze)."""
    from vigil import analyze
    items, now = analyze.timings(reply)
    what = args[0] if args else ""
    if what == "plot":
        if as_json:
            print(_json({"now": now, "rows": [_timing_json(t) for t in items]}))
        else:
            sys.stdout.write(analyze.plot(items, now))
        return EXIT_OK
    if what == "blame":
        rows = analyze.blame(items)
        if as_json:
            print(_json([{**_timing_json(t), "took": took} for took, t in rows]))
        for took, t in [] if as_json else rows:
            print(f"{analyze.span(took):>10} {escape(t.name)}")
        return EXIT_OK
    if what == "critical-chain":
        unit = args[1] if len(args) > 1 else analyze.default_unit(items)
        if unit is None:
            raise CtlError("critical-chain: no unit is ready yet", EXIT_NOT_RUNNING)
        try:
            chain = analyze.critical_chain(items, unit)
        except KeyError:
            raise CtlError(f"no such unit: {unit} (or it was never started)",
                           EXIT_NO_UNIT) from None
        if as_json:
            print(_json([{**_timing_json(link.timing), "depth": link.depth,
                               "took": link.timing.took, "repeated": link.repeated}
                              for link in chain]))
            return EXIT_OK
        print(analyze.CHAIN_HEADER + "\n")
        for line in analyze.chain_lines(chain, lambda text: term.paint(text, "31;1", colour)):
            print(line)
        return EXIT_OK
    # plain analyze: from the start request to ready, as before blame existed
    rows = sorted(((u["ready_after"], u["name"]) for u in reply["units"]
                   if u.get("ready_after") is not None), reverse=True)
    if as_json:
        print(_json([{"name": n, "ready_after": t} for t, n in rows]))
    for t, n in [] if as_json else rows:
        print(f"{t:9.3f}s  {escape(n)}")
    return EXIT_OK


def _timing_json(t) -> dict:
    return {"name": t.name, "kind": t.kind, "state": t.state, "requested": t.requested,
            "launched": t.launched, "ready": t.ready, "end": t.end, "after": list(t.after),
            "waited_for": t.waited_for}


def main() -> int:
    name = os.path.basename(sys.argv[0])
    try:
        if name in SYSV_USAGE:
            return sysv_main(name, sys.argv[1:])
        return run(sys.argv[1:])
    except CtlError as e:
        print(f"vigilctl: {e}", file=sys.stderr)
        return e.code
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
