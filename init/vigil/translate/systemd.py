"""A systemd unit file (and its drop-ins) -> vigil's raw unit dict and notes.

translate() reads the assignments of every file in order (the unit file, then its drop-ins),
so a later assignment overrides an earlier one and an empty one resets a list, as systemd
does. Each directive vigil carries over has a handler below; every other directive becomes
a note with its file and line, never dropped silently. A value vigil would reject is noted
and ignored, as systemd ignores an invalid assignment; only a unit systemd itself would
refuse (no ExecStart=, several ExecStart= outside a oneshot) is an error.
"""

from dataclasses import dataclass, field

from vigil.translate import directives, skip, syntax
from vigil.translate.specifiers import Context, resolve

OUT_OF_SCOPE = ("socket", "timer", "path", "mount", "device", "slice", "scope", "swap",
                "automount")
SECTIONS = {"service": ("Unit", "Service", "Install"), "target": ("Unit", "Install")}


class TranslateError(Exception):
    def __init__(self, path: str, line: int, key: str, reason: str):
        self.path, self.line, self.key, self.reason = path, line, key, reason
        super().__init__(f"{path}:{line}: {key}: {reason}")


def vigil_name(name: str) -> str | None:
    """ssh.service -> ssh, network.target -> network.target, getty@tty1.service ->
    getty@tty1; None for the types vigil does not import."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return None
    if suffix == "service":
        return stem
    return name if suffix == "target" else None


@dataclass
class Translation:
    name: str                               # the vigil name (a template ends with @)
    raw: dict                               # {"unit": {...}, "service": {...}}
    positions: dict                         # "section.key" -> (path, line)
    notes: list                             # (path, line, text)
    install: dict = field(default_factory=dict)   # WantedBy/RequiredBy: vigil names
    later: list = field(default_factory=list)     # pulled in but Before=: started after it


class State:
    """What the handlers build while reading the assignments in order."""

    def __init__(self, ctx: Context, kind: str):
        self.ctx, self.kind = ctx, kind
        self.raw: dict = {"unit": {}, "service": {}}
        self.positions: dict = {}
        self.notes: list = []
        self.commands: dict[str, list] = {}       # Exec*= directive -> [(words, assignment)]
        self.environment: dict[str, str] = {}
        self.limits: dict[str, object] = {}
        self.outputs: dict[str, tuple] = {}       # StandardOutput/StandardError -> (mode, a)
        self.install: dict[str, list[str]] = {}
        self.later: list[str] = []
        self.type: tuple[str, syntax.Assignment] | None = None
        self.where: dict[str, syntax.Assignment] = {}

    def note(self, a: syntax.Assignment, text: str) -> None:
        value = a.value if len(a.value) <= 60 else a.value[:57] + "..."
        self.notes.append((a.path, a.line, f"{a.key}={value}: {text}"))

    def spec(self, a: syntax.Assignment, text: str) -> str:
        value, problems = resolve(text, self.ctx)
        for p in problems:
            self.note(a, f"specifier {p}")
        return value

    def _valid(self, a, section: str, key: str, value) -> bool:
        """Check a value as vigil will (an instance stands in for a template's %i)."""
        from vigil.unit import SCHEMA, _substitute
        try:
            SCHEMA[key][1](_substitute(value, "instance", "name"))
        except ValueError as e:
            self.note(a, f"ignored: {e}")
            return False
        return True

    def set(self, a, section: str, key: str, value) -> None:
        if self._valid(a, section, key, value):
            self.raw[section][key] = value
            self.positions[f"{section}.{key}"] = (a.path, a.line)

    def add(self, a, section: str, key: str, values: list) -> None:
        good = [v for v in values if self._valid(a, section, key, [v])]
        if good:
            self.raw[section].setdefault(key, []).extend(good)
            self.positions[f"{section}.{key}"] = (a.path, a.line)

    def reset(self, section: str, *keys: str) -> None:
        for key in keys:
            self.raw[section].pop(key, None)

    def dependency(self, a, name: str) -> str | None:
        """A unit named in a dependency, as vigil names it; None (with a note) if dropped."""
        target, why = dependency(name, strong=a.key in ("Requires", "BindsTo"))
        if why:
            self.note(a, why)
        return target


def dependency(name: str, strong: bool = False) -> tuple[str | None, str]:
    """A unit named in a dependency -> (its vigil name or None if dropped, a note or "")."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return None, f"{name}: not a unit name (no .service or .target suffix), dropped"
    if suffix in OUT_OF_SCOPE:
        why = f"{name} dropped: .{suffix} units are out of scope"
        if suffix == "socket" and strong:
            why += "; socket activation is a non-goal: the daemon must open its own socket"
        return None, why
    target = vigil_name(name)
    if target is None:
        return None, f"{name} dropped: not a unit type vigil knows"
    reason = skip.systemd_reason(target)
    if reason is None:
        return target, ""
    instead = skip.replacement(target)
    if instead:
        return instead, f"{name} is vigil's {instead}" if instead != target else ""
    return None, f"{name} dropped ({reason})"


def translate(name: str, files: list[tuple[str, str]], ctx: Context) -> Translation:
    """name is the unit file's name (ssh.service, getty@.service); files are (path, text)
    of the unit file and its drop-ins in the order they apply."""
    kind = name.rpartition(".")[2]
    assignments: list[syntax.Assignment] = []
    notes: list = []
    for path, text in files:
        got, ignored = syntax.parse(text, path)
        assignments += got
        notes += ignored
    _find_user(assignments, ctx)
    st = State(ctx, kind)
    st.notes = notes
    sections = SECTIONS.get(kind, ())
    noted_sections: set[tuple[str, str]] = set()
    for a in assignments:
        if a.section not in sections:
            if (a.path, a.section) not in noted_sections:
                noted_sections.add((a.path, a.section))
                st.notes.append((a.path, a.line, f"[{a.section}]: this section is not "
                                 f"carried over (a .{kind} has only "
                                 f"{', '.join('[' + s + ']' for s in sections)})"))
            continue
        handler = directives.HANDLERS.get((a.section, a.key))
        if handler is not None:
            st.where[a.key] = a
            handler(st, a)
        else:
            st.note(a, directives.not_carried(a.key, a.value))
    _finish(st, files[0][0])
    return Translation(vigil_name(name) or name, st.raw, st.positions, st.notes, st.install,
                       st.later)


def _find_user(assignments: list[syntax.Assignment], ctx: Context) -> None:
    """%u and %h come from User=, wherever it is set (a first pass)."""
    for a in assignments:
        if a.section == "Service" and a.key == "User":
            ctx.user = resolve(a.value, Context(ctx.prefix, ctx.suffix, ctx.template,
                                                ctx.instance))[0] if a.value else ""


def _finish(st: State, path: str) -> None:
    """What needs all the assignments: ExecStart=, Type=, outputs, environment, limits."""
    if st.kind == "target":
        st.raw["service"] = {"type": "group"}
        return
    kind, type_at = st.type if st.type else ("simple", None)
    starts = st.commands.pop("ExecStart", [])
    service = st.raw["service"]
    if kind == "oneshot":
        if starts:
            *before, last = starts
            st.commands["ExecStartPre"] = st.commands.get("ExecStartPre", []) + before
            _set_command(st, "exec", last)
    else:
        if not starts:
            raise TranslateError(path, 0, "ExecStart", "a service needs an ExecStart= (only "
                                 "a Type=oneshot may have none); systemd refuses it too")
        if len(starts) > 1:
            a = starts[1][1]
            raise TranslateError(a.path, a.line, "ExecStart",
                                 f"more than one ExecStart= for Type={kind}: only a oneshot "
                                 "may have several; systemd refuses it too")
        _set_command(st, "exec", starts[0])
    for directive, key in directives.COMMAND_KEYS.items():
        for entry in st.commands.get(directive, []):
            _add_command(st, key, entry)
    if kind == "forking" and "pidfile" not in service:
        where = type_at or st.where.get("ExecStart")
        st.notes.append((where.path if where else path, where.line if where else 0,
                         "Type=forking without PIDFile=: vigil cannot find the main process, "
                         "so it runs as a oneshot that stays active (remain_after_exit) and "
                         "exec_stop stops it"))
        kind = "oneshot"
        service["remain_after_exit"] = True
    service["type"] = kind
    service.setdefault("restart", "never")   # systemd's default is Restart=no
    if any(k.startswith("exec") for k in service):
        service["expand_environment"] = True
    _unordered_pulls(st)
    directives.finish_outputs(st)
    if st.environment:
        service["environment"] = dict(st.environment)
    if st.limits:
        service["limits"] = dict(st.limits)


def _unordered_pulls(st: State) -> None:
    """systemd's Wants=/Requires= pull a unit in without ordering; vigil's also order after
    it. A unit ordered Before= what it pulls in (networking.service and network.target)
    would be a cycle: that pull is kept aside (st.later), and the import starts that unit
    at boot with this one when this one is enabled (it is ordered after it anyway)."""
    unit = st.raw["unit"]
    before, after = set(unit.get("before", ())), set(unit.get("after", ()))
    for key in ("requires", "requisite", "wants"):
        where = st.positions.get(f"unit.{key}", ("", 0))
        kept = []
        for name in unit.get(key, ()):
            if name in before:
                st.notes.append((*where, f"{key}: {name} is also Before=: vigil's {key} would "
                                 "order this unit after it; when this unit is enabled, "
                                 f"{name} is started at boot too, after it"))
                if name not in st.later:
                    st.later.append(name)
            else:
                if name not in after:
                    st.notes.append((*where, f"{key}: {name}: vigil also starts this unit "
                                     "after it (systemd would not order them)"))
                kept.append(name)
        if kept:
            unit[key] = kept
        else:
            unit.pop(key, None)


def _vigil_words(cmd: syntax.CommandLine, st: State, a) -> list[str]:
    words = [st.spec(a, w) for w in cmd.words]
    prefix = ("-" if cmd.ignore_failure else "") + ("+" if cmd.privileged else "") \
        + ("@" if cmd.argv0 else "") + ("" if cmd.expand else ":")
    argv0 = [st.spec(a, cmd.argv0)] if cmd.argv0 else []
    return [prefix + words[0], *argv0, *words[1:]]


def _set_command(st: State, key: str, entry) -> None:
    cmd, a = entry
    st.set(a, "service", key, _vigil_words(cmd, st, a))


def _add_command(st: State, key: str, entry) -> None:
    cmd, a = entry
    st.add(a, "service", key, [_vigil_words(cmd, st, a)])
