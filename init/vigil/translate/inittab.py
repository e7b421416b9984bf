"""/etc/inittab: the user's own lines (id:runlevels:action:process) become units named
inittab-ID; the lines vigil does itself are listed as handled.

    respawn   a simple unit, restarted always, with sysvinit's respawn limit: more than 10
              starts in 2 minutes and it waits 5 minutes
    once      a oneshot
    wait      a oneshot; the inittab units after it in the file start after it has finished,
              as init waits for it before it reads on
A line is enabled when its run levels include the default one (initdefault, else 2); an
empty run level field means every level. Getty lines are units too; Catalog.gettys maps
each to its terminal, so that a getty vigil already runs on that terminal can win.
"""

from dataclasses import dataclass, field

SHELL_CHARS = set("~`!$^&*()=|\\{}[];\"'<>?")   # sysvinit runs such a line through /bin/sh
HANDLED = {
    "initdefault": "the default run level, read by vigil",
    "ctrlaltdel": "vigil.toml [shutdown] ctrl_alt_del says what Ctrl-Alt-Del does",
    "kbrequest": "vigil has no keyboard request action",
    "powerfail": "vigil.toml [shutdown] power_failure says what SIGPWR does",
    "powerwait": "vigil.toml [shutdown] power_failure says what SIGPWR does",
    "powerfailnow": "vigil.toml [shutdown] power_failure says what SIGPWR does",
    "powerokwait": "vigil.toml [shutdown] power_failure says what SIGPWR does",
    "sysinit": "vigil's stage 1 and the rcS.d links it reads replace /etc/init.d/rcS",
    "boot": "vigil's stage 1 does the boot",
    "bootwait": "vigil's stage 1 does the boot",
}
GETTYS = ("getty", "agetty", "mingetty", "fgetty", "mgetty")
RC_RUNNERS = ("/etc/init.d/rc", "/etc/init.d/rcS")
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@-")


@dataclass
class InittabUnit:
    name: str
    line: int
    raw: dict
    enabled: bool
    tty: str = ""                           # for a getty line
    notes: list = field(default_factory=list)


@dataclass
class Inittab:
    default_level: str = "2"
    units: list[InittabUnit] = field(default_factory=list)
    handled: list[tuple[str, int, str]] = field(default_factory=list)   # (path, line, why)
    problems: list[tuple[str, int, str]] = field(default_factory=list)


def default_level(text: str) -> str:
    """initdefault's run level, or 2 (Debian's default) without one."""
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) >= 3 and fields[2] == "initdefault" and fields[1][:1] in "0123456789":
            return fields[1][:1]
    return "2"


def argv(process: str) -> list[str]:
    """The process field as sysvinit runs it: through /bin/sh -c "exec ..." when it has shell
    characters, else split on blanks."""
    if set(process) & SHELL_CHARS:
        return ["/bin/sh", "-c", "exec " + process]
    return process.split()


def parse(text: str, path: str) -> Inittab:
    tab = Inittab(default_level(text))
    ids: set[str] = set()
    previous_waits: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split(":", 3)
        if len(fields) != 4:
            tab.problems.append((path, number, "not id:runlevels:action:process, ignored"))
            continue
        ident, levels, action, process = fields
        where = f"{ident}:{levels}:{action}"
        if action in HANDLED or (process.split()[:1] and process.split()[0] in RC_RUNNERS):
            why = HANDLED.get(action) or f"{process.split()[0]}: vigil reads the rc?.d links"
            tab.handled.append((path, number, f"{where}: {why}"))
            continue
        if action == "off":
            tab.handled.append((path, number, f"{where}: off, nothing to run"))
            continue
        if action not in ("respawn", "once", "wait", "ondemand"):
            tab.problems.append((path, number, f"{where}: unknown action {action!r}, ignored"))
            continue
        if action == "ondemand" or (levels and not set(levels) & set("2345")):
            tab.handled.append((path, number, f"{where}: only for run levels {levels or '-'}"
                                ", which are vigil's shutdown and rescue modes (or a/b/c)"))
            continue
        name = "inittab-" + "".join(c if c in NAME_CHARS else "_" for c in ident)
        if not ident or name in ids:
            tab.problems.append((path, number, f"{where}: id {ident!r} is empty or used "
                                 "twice, ignored"))
            continue
        ids.add(name)
        unit = _unit(name, number, levels, action, process, path, tab.default_level)
        unit.raw["unit"]["after"] = list(previous_waits)
        if not unit.raw["unit"]["after"]:
            del unit.raw["unit"]["after"]
        if action == "wait":
            previous_waits.append(name)
        tab.units.append(unit)
    return tab


def _unit(name, number, levels, action, process, path, level) -> InittabUnit:
    notes = []
    if process.startswith("+"):
        process = process[1:]
        notes.append((path, number, "+: vigil writes no utmp entry for the process anyway"))
    words = argv(process)
    service: dict = {"exec": words}
    if action == "respawn":
        service.update(restart="always", start_limit_burst=10, start_limit_interval=120,
                       start_limit_cooldown=300)
    else:
        service.update(type="oneshot")
    program = process.split()[0].rsplit("/", 1)[-1] if process.split() else ""
    tty = ""
    if program in GETTYS:
        ttys = [w for w in process.split()[1:] if w.startswith(("tty", "/dev/", "hvc"))]
        tty = ttys[-1].removeprefix("/dev/") if ttys else ""
        service["log"] = "null"
    description = f"/etc/inittab line {number}: {action} {process}"
    raw = {"unit": {"description": description[:200],
                    "enabled": not levels or level in levels},
           "service": service}
    return InittabUnit(name, number, raw, raw["unit"]["enabled"], tty, notes)
