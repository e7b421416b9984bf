"""Unit files: TOML text in, validated Unit objects (or errors naming file, line, key) out.

The schema table below is the single description of every key: its section, type,
default and check. Parsing is pure: it reads files and returns values, it starts nothing.
tomllib and shlex are imported only when a file is parsed, so PID 1 does not carry them
until it reads units. Units imported from systemd, init.d and inittab (vigil.translate) are
built by the same `build`, from the raw dict the translators make.
"""

import os
import resource
import signal

from vigil import command, perms
from vigil.files import read_text

# Stock units, then units generated at boot for this machine (udev), then the admin's.
RUNTIME_UNITS = "/run/vigil/units"
UNIT_DIRS = ["/usr/lib/vigil/units", RUNTIME_UNITS, "/etc/vigil/units"]
# systemd's unit name characters: a backslash comes from systemd-escape (\x2d).
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@-\\")
TYPES = ("simple", "notify", "oneshot", "forking", "group")
RESTARTS = ("always", "on-failure", "never", "on-success", "on-abnormal", "on-abort",
            "on-watchdog")
LOG_MODES = ("file", "console", "null")
KILL_MODES = ("control-group", "process", "mixed", "none")
NOTIFY_ACCESS = ("main", "exec", "all", "none")
ORIGINS = ("toml", "systemd", "init.d", "inittab")
RLIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
           "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")


class UnitError(Exception):
    """A unit file that cannot be used: where (file, line, key) and why."""

    def __init__(self, path: str, reason: str, key: str = "", line: int = 0):
        self.path, self.reason, self.key, self.line = path, reason, key, line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key + ': ' if key else ''}{reason}")


# --- checks: each takes the TOML value and returns the stored value or raises ValueError

def _str(v):
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {type(v).__name__}")
    return v


def _names(v):
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError("expected a list of unit names")
    for x in v:
        if not x or not set(x) <= NAME_CHARS:
            raise ValueError(f"{x!r} is not a valid unit name")
    return tuple(v)


def _bool(v):
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _choice(*allowed):
    def check(v):
        if v not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {v!r}")
        return v
    return check


def _number(minimum, integer=False):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)):
            raise ValueError(f"expected {'an integer' if integer else 'a number'}, got {v!r}")
        if v < minimum:
            raise ValueError(f"must be at least {minimum}")
        return v
    return check


def _signal(v):
    if isinstance(v, int) and not isinstance(v, bool) and 0 < v < signal.NSIG:
        return v
    if isinstance(v, str):
        name = v.upper() if v.upper().startswith("SIG") else "SIG" + v.upper()
        sig = getattr(signal, name, None)
        if isinstance(sig, signal.Signals):
            return int(sig)
    raise ValueError(f"unknown signal {v!r}")


def _abspath(v):
    if not isinstance(v, str) or not v.startswith("/"):
        raise ValueError(f"expected an absolute path, got {v!r}")
    return v


def _table_of(check_entry, what: str):
    """A table whose every entry passes check_entry(key, value) -> an item; the items
    sorted (so that two equal tables give the same unit)."""
    def check(v):
        if not isinstance(v, dict):
            raise ValueError(f"expected a table of {what}")
        return tuple(sorted(check_entry(k, x) for k, x in v.items()))
    return check


def _variable(k: str, x) -> tuple[str, str]:
    if not isinstance(x, str) or "=" in k or not k:
        raise ValueError(f"{k!r}: expected NAME = \"string\"")
    return k, x


_environment = _table_of(_variable, 'NAME = "value"')


def _octal(maximum: int, example: str):
    def check(v):
        if isinstance(v, str):
            try:
                v = int(v, 8)
            except ValueError:
                raise ValueError(f"expected an octal string like \"{example}\", got {v!r}") \
                    from None
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= maximum:
            raise ValueError(f"expected an octal value between 0 and {maximum:o}, got {v!r}")
        return v
    return check


_umask = _octal(0o777, "022")
_mode = _octal(0o7777, "0755")


def _list_of(check_one, what: str, label=lambda i, x: repr(x)):
    """A list whose every element passes check_one; the error names the element."""
    def check(v):
        if not isinstance(v, list):
            raise ValueError(f"expected a list of {what}")
        out = []
        for i, x in enumerate(v, 1):
            try:
                out.append(check_one(x))
            except ValueError as e:
                raise ValueError(f"{label(i, x)}: {e}") from None
        return tuple(out)
    return check


def _condition(v) -> tuple[str, bool, bool]:
    """"[|][!]/path" (either order) -> (path, negated, triggering), as systemd reads it."""
    rest, negate, trigger = _str(v), False, False
    while rest[:1] in ("!", "|"):
        if (rest[0] == "!" and negate) or (rest[0] == "|" and trigger):
            raise ValueError(f"prefix {rest[0]!r} given twice")
        negate, trigger = negate or rest[0] == "!", trigger or rest[0] == "|"
        rest = rest[1:]
    return _abspath(rest), negate, trigger


def _optional_path(v) -> tuple[str, bool]:
    """"-/path": the file may be missing -> (path, optional)."""
    v = _str(v)
    return (_abspath(v[1:]), True) if v.startswith("-") else (_abspath(v), False)


def _relative(v):
    v = _str(v)
    if not v or v.startswith("/") or ".." in v.split("/") or "" in v.split("/"):
        raise ValueError("expected a relative directory name (no leading /, no ..)")
    return v


def _exit_status(v):
    """An exit code 0-255 or a signal name, normalised to SIGNAME."""
    if isinstance(v, int) and not isinstance(v, bool):
        if not 0 <= v <= 255:
            raise ValueError("an exit code is between 0 and 255")
        return v
    if not isinstance(v, str):
        raise ValueError(f"expected an exit code or a signal name, got {v!r}")
    return signal.Signals(_signal(v)).name


def _limit_value(v) -> int:
    if v == "infinity":
        return resource.RLIM_INFINITY
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"expected a non-negative integer or \"infinity\", got {v!r}")
    return v


def _limit(name: str, value) -> tuple[str, int, int]:
    """name = N | "infinity" | [soft, hard] -> (name, soft, hard)."""
    if name not in RLIMITS:
        raise ValueError(f"{name!r}: unknown rlimit (one of {', '.join(RLIMITS)})")
    pair = value if isinstance(value, list) else [value, value]
    if len(pair) != 2:
        raise ValueError(f"{name}: expected a value or [soft, hard]")
    try:
        soft, hard = _limit_value(pair[0]), _limit_value(pair[1])
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
        raise ValueError(f"{name}: the soft limit is above the hard limit")
    return name, soft, hard


_limits = _table_of(_limit, "rlimit = value")


def _nice(v):
    if isinstance(v, bool) or not isinstance(v, int) or not -20 <= v <= 19:
        raise ValueError(f"expected an integer from -20 to 19, got {v!r}")
    return v


def _log(v):
    if isinstance(v, str) and v.startswith("append:"):
        _abspath(v[len("append:"):])
        return v
    if v not in LOG_MODES:
        raise ValueError(f"expected one of {', '.join(LOG_MODES)} or append:/path, got {v!r}")
    return v


def _working_dir(v):
    """An absolute path or ~ (the user's home); a leading - lets it be missing."""
    v = _str(v)
    rest = v[1:] if v.startswith("-") else v
    if rest != "~":
        _abspath(rest)
    return v


def _command(v):
    return command.parse(v)


_command_list = _list_of(command.parse, "commands (each a string or a list of strings)",
                         lambda i, x: f"command {i}")


def _commands(v):
    """A list of commands; a lone string is one command."""
    return (command.parse(v),) if isinstance(v, str) else _command_list(v)


_strings = _list_of(_str, "strings")
_abspaths = _list_of(_abspath, "absolute paths")
_conditions = _list_of(_condition, "absolute paths, each optionally prefixed ! and/or |")
_exit_statuses = _list_of(_exit_status, "exit codes and signal names")

# key: (section, check, default). A default of None means "not set".
SCHEMA = {
    "description": ("unit", _str, ""),
    "documentation": ("unit", _strings, ()),
    "requires": ("unit", _names, ()),
    "requisite": ("unit", _names, ()),
    "wants": ("unit", _names, ()),
    "after": ("unit", _names, ()),
    "before": ("unit", _names, ()),
    "part_of": ("unit", _names, ()),
    "conflicts": ("unit", _names, ()),
    "aliases": ("unit", _names, ()),
    "condition_path_exists": ("unit", _conditions, ()),
    "condition_path_is_directory": ("unit", _conditions, ()),
    "condition_file_not_empty": ("unit", _conditions, ()),
    "condition_file_is_executable": ("unit", _conditions, ()),
    "assert_path_exists": ("unit", _conditions, ()),
    "requires_mounts": ("unit", _abspaths, ()),
    "enabled": ("unit", _bool, True),
    "rescue": ("unit", _bool, False),   # also started in rescue (single-user) mode
    "type": ("service", _choice(*TYPES), "simple"),
    "exec": ("service", _command, None),
    "exec_start_pre": ("service", _commands, ()),
    "exec_start_post": ("service", _commands, ()),
    "exec_reload": ("service", _commands, ()),
    "exec_stop": ("service", _commands, ()),
    "exec_stop_post": ("service", _commands, ()),
    "remain_after_exit": ("service", _bool, False),
    "expand_environment": ("service", _bool, False),
    "pidfile": ("service", _abspath, None),
    "restart": ("service", _choice(*RESTARTS), None),  # default depends on type
    "restart_delay": ("service", _number(0), 0.1),
    "restart_delay_max": ("service", _number(0), 10),
    "restart_prevent_exit_status": ("service", _exit_statuses, ()),
    "success_exit_status": ("service", _exit_statuses, ()),
    "start_limit_burst": ("service", _number(1, integer=True), 5),
    "start_limit_interval": ("service", _number(0), 10),
    "start_limit_cooldown": ("service", _number(0), 300),
    "start_timeout": ("service", _number(0), 90),
    "stop_signal": ("service", _signal, int(signal.SIGTERM)),
    "stop_timeout": ("service", _number(0), 10),
    "kill_mode": ("service", _choice(*KILL_MODES), "control-group"),
    "send_sigkill": ("service", _bool, True),
    "watchdog": ("service", _number(0), 0),
    "notify_access": ("service", _choice(*NOTIFY_ACCESS), "main"),
    "user": ("service", _str, None),
    "group": ("service", _str, None),
    "supplementary_groups": ("service", _strings, ()),
    "working_dir": ("service", _working_dir, None),
    "root_directory": ("service", _abspath, None),
    "environment": ("service", _environment, ()),
    "environment_file": ("service", _list_of(_optional_path, "absolute paths (- prefix: "
                                                            "may be missing)"), ()),
    "umask": ("service", _umask, 0o022),
    "nice": ("service", _nice, None),
    "limits": ("service", _limits, ()),
    "runtime_directory": ("service", _list_of(_relative, "relative names"), ()),
    "state_directory": ("service", _list_of(_relative, "relative names"), ()),
    "logs_directory": ("service", _list_of(_relative, "relative names"), ()),
    "cache_directory": ("service", _list_of(_relative, "relative names"), ()),
    "runtime_directory_mode": ("service", _mode, 0o755),
    "state_directory_mode": ("service", _mode, 0o755),
    "logs_directory_mode": ("service", _mode, 0o755),
    "cache_directory_mode": ("service", _mode, 0o755),
    "tty": ("service", _abspath, None),
    "log": ("service", _log, "file"),
    "log_max_size": ("service", _number(1024, integer=True), 1 << 20),
    "log_keep": ("service", _number(1, integer=True), 5),
}
SECTIONS = ("unit", "service")


class Unit:
    """One validated unit. Attributes are the SCHEMA keys plus name, path, instance and
    where it came from: origin ("toml", "systemd", "init.d", "inittab"), notes (what a
    translation could not carry over: (path, line, text) tuples) and masked (never started).
    """

    __slots__ = ("name", "path", "instance", "origin", "notes", "masked", *SCHEMA)

    def __init__(self, name: str, path: str, instance: str = "", origin: str = "toml",
                 notes: tuple = (), masked: bool = False, **values):
        self.name, self.path, self.instance = name, path, instance
        self.origin, self.notes, self.masked = origin, tuple(notes), masked
        for key, (_section, _check, default) in SCHEMA.items():
            setattr(self, key, values.get(key, default))
        if self.restart is None:
            self.restart = "never" if self.type in ("oneshot", "group") else "always"

    def settings(self) -> dict:
        return {key: getattr(self, key) for key in SCHEMA}

    def __eq__(self, other) -> bool:
        return isinstance(other, Unit) and self.name == other.name \
            and self.masked == other.masked and self.settings() == other.settings()

    def __repr__(self) -> str:
        return f"Unit({self.name!r})"

    def ordered_after(self) -> set[str]:
        """Units this one starts after: `requires` and `wants` imply ordering."""
        return set(self.after) | set(self.requires) | set(self.wants)

    # --- JSON, to pass units from the parsing child to PID 1 ---------------------------
    def to_json(self) -> dict:
        return {"path": self.path, "instance": self.instance, "origin": self.origin,
                "notes": [list(n) for n in self.notes], "masked": self.masked,
                "settings": {k: to_jsonable(v) for k, v in self.settings().items()}}

    @classmethod
    def from_json(cls, name: str, data: dict) -> "Unit":
        values = {k: from_jsonable(v) for k, v in data["settings"].items()}
        return cls(name, data["path"], data["instance"], data["origin"],
                   tuple(tuple(n) for n in data["notes"]), data["masked"], **values)


def to_jsonable(value):
    """Tuples become lists, a Command {"command": [...]}; from_jsonable undoes it."""
    if isinstance(value, command.Command):
        return {"command": value.to_json()}
    if isinstance(value, tuple):
        return [to_jsonable(v) for v in value]
    return value


def from_jsonable(value):
    if isinstance(value, dict) and "command" in value:
        return command.Command.from_json(value["command"])
    if isinstance(value, list):
        return tuple(from_jsonable(v) for v in value)
    return value


def _line_of(text: str, section: str, key: str) -> int:
    """The line where `key` is set in `[section]`, for error messages (0 if not found)."""
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            current = stripped.strip("[] ")
        elif current == section and stripped.split("=", 1)[0].strip().strip('"') == key:
            return number
    return 0


def read_raw(path: str) -> tuple[dict, str]:
    """Parse one file's TOML into {section: {key: value}} and return it with its text."""
    import tomllib
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise UnitError(path, f"cannot read: {e}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        line = 0
        if "(at line " in msg:
            line = int(msg.split("(at line ", 1)[1].split(",", 1)[0])
            msg = msg.split(" (at line ", 1)[0]
        raise UnitError(path, f"TOML syntax: {msg}", line=line) from None
    for section, body in raw.items():
        if section not in SECTIONS:
            header = next((n for n, line in enumerate(text.splitlines(), 1)
                           if line.strip().startswith(f"[{section}")), 0)
            raise UnitError(path, f"unknown section [{section}] (expected [unit] or [service])",
                            key=section, line=header)
        if not isinstance(body, dict):
            raise UnitError(path, "must be a table", key=section)
    return raw, text


def mount_point(name: str) -> str:
    """srv-my\\x2ddata.mount -> /srv/my-data: the path a mount unit's name stands for."""
    return os.path.normpath("/" + unescape(name.removesuffix(".mount")))


def named_paths(unit: "Unit") -> list[str]:
    """The paths a unit cannot run without: its programs (symbolic links followed, /sbin
    being /usr/sbin on Debian), working_dir, root_directory, requires_mounts; and for a mount
    unit, its own mount point (it needs the file systems above it)."""
    paths = list(unit.requires_mounts)
    commands = [unit.exec] if unit.exec else []
    for key in ("exec_start_pre", "exec_start_post", "exec_reload", "exec_stop",
                "exec_stop_post"):
        commands.extend(getattr(unit, key))
    paths += [os.path.realpath(c.argv[0]) for c in commands if c.argv[0].startswith("/")]
    directory = (unit.working_dir or "").lstrip("-")
    paths += [p for p in (directory, unit.root_directory) if p and p.startswith("/")]
    if unit.name.endswith(".mount"):
        paths.append(mount_point(unit.name))
    return paths


def unescape(text: str) -> str:
    """systemd-escape undone: - is /, \\xNN is that byte (%I, %P)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("\\x", i) and len(text) >= i + 4:
            try:
                out.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
            except ValueError:
                pass
        out.append("/" if text[i] == "-" else text[i])
        i += 1
    return "".join(out)


def _specifiers(text: str, instance: str, name: str) -> str:
    """%i instance, %I instance unescaped, %n name, %p prefix, %P prefix unescaped, %% a %.
    Any other %X is left as it is."""
    if "%" not in text:
        return text
    prefix = name.split("@", 1)[0]
    values = {"i": instance, "I": unescape(instance), "n": name, "p": prefix,
              "P": unescape(prefix), "%": "%"}
    out, rest = [], text
    while True:   # one pass: what is put in is never read again
        head, percent, rest = rest.partition("%")
        out.append(head)
        if not percent:
            return "".join(out)
        if rest[:1] in values and rest[:1]:
            out.append(values[rest[0]])
            rest = rest[1:]
        else:
            out.append("%")


def _substitute(value, instance: str, name: str):
    if isinstance(value, str):
        return _specifiers(value, instance, name)
    if isinstance(value, list):
        return [_substitute(v, instance, name) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, instance, name) for k, v in value.items()}
    return value


def _locate(path: str, source, section: str, key: str) -> tuple[str, int]:
    """Where a key was set: source is a TOML file's text, or, for a translated unit, a
    {"section.key": (path, line)} table (the key may come from a drop-in)."""
    if isinstance(source, dict):
        where = source.get(f"{section}.{key}")
        return (where[0], where[1]) if where else (path, 0)
    return path, _line_of(source, section, key)


def _error(path: str, source, section: str, key: str, reason: str) -> UnitError:
    where, line = _locate(path, source, section, key)
    return UnitError(where, reason, key=f"{section}.{key}", line=line)


def build(name: str, path: str, raw: dict, text, instance: str = "", origin: str = "toml",
          notes: tuple = (), masked: bool = False) -> Unit:
    """Validate a parsed file (already merged over its template) into a Unit. text is the
    TOML text, or the positions table of a translated unit (see _locate)."""
    values = {}
    for section, body in raw.items():
        for key, value in body.items():
            spec = SCHEMA.get(key)
            if spec is None or spec[0] != section:
                hint = f" (it belongs in [{spec[0]}])" if spec else _did_you_mean(key)
                raise _error(path, text, section, key, f"unknown key{hint}")
            try:
                values[key] = spec[1](_substitute(value, instance, name))
            except ValueError as e:
                raise _error(path, text, section, key, str(e)) from None
    kind = values.get("type", "simple")
    if kind == "group" and "exec" in values:
        raise _error(path, text, "service", "exec", "a group runs no process: no exec")
    if "exec" not in values and kind not in ("oneshot", "group"):
        raise UnitError(path, "missing: every unit needs a command to run (only a oneshot "
                        "or a group may have none)", key="service.exec")
    if kind == "forking" and "pidfile" not in values:
        raise UnitError(path, "a forking service needs a pidfile", key="service.pidfile")
    return Unit(name, path, instance, origin, notes, masked, **values)


def _did_you_mean(key: str) -> str:
    import difflib
    close = difflib.get_close_matches(key, SCHEMA, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _merge(template: dict, instance: dict) -> dict:
    merged = {s: dict(b) for s, b in template.items()}
    for section, body in instance.items():
        merged.setdefault(section, {}).update(body)
    return merged


DEPENDENCY_KEYS = ("requires", "requisite", "wants", "after", "before", "part_of",
                   "conflicts")
# What `vigilctl check` reports about imported units besides errors and notes.
REPORTS = ("shadowed", "skipped", "masks", "no_header", "handled", "ignored", "warnings")


class Catalog:
    """The units found in a list of directories, later directories overriding earlier ones,
    and, with an import root, the machine's systemd units, init.d scripts and inittab lines
    (vigil.translate) for the names vigil's own units do not give.

    `units` holds every valid unit, `errors` every file that did not validate (by unit
    name). Templates (NAME@.toml, NAME@.service) are kept raw, so `get("NAME@X")` can make
    an instance that has no file of its own, as getty@ttyS0 is made from getty@.toml.
    `aliases` maps each alias to its unit; the units' dependencies name the units
    themselves. `gettys` maps inittab getty units to their terminal.
    """

    def __init__(self, dirs: list[str], read: bool = True, import_root: str | None = None):
        self.dirs = list(dirs)
        self.import_root = import_root
        self.units: dict[str, Unit] = {}
        self.errors: dict[str, UnitError] = {}
        self.templates: dict[str, dict] = {}
        self.aliases: dict[str, str] = {}
        self.gettys: dict[str, str] = {}
        self.runlevel = "2"
        # name -> [path used, paths shadowed...]; name -> (path, why); name -> mask link;
        # [(path, why)] scripts without LSB header; [(path, line, text)] inittab lines
        # vigil does itself; [path] out-of-scope unit files; [text]
        self.shadowed: dict[str, list[str]] = {}
        self.skipped: dict[str, list] = {}
        self.masks: dict[str, str] = {}
        self.no_header: list = []
        self.handled: list = []
        self.ignored: list = []
        self.warnings: list = []
        self.sources: dict[str, dict] = {}   # imported units: the raw dict `convert` writes
        self._where: dict[str, dict] = {}    # imported units: key -> (path, line)
        if read:
            self._read()

    def _read(self) -> None:
        files: dict[str, str] = {}
        for d in self.dirs:
            try:
                entries = sorted(os.listdir(d))
            except FileNotFoundError:
                continue
            except OSError as e:
                self.errors[d] = UnitError(d, f"cannot list directory: {e.strerror}")
                continue
            for entry in entries:
                if entry.endswith(".toml") and not entry.startswith("."):
                    files[entry[:-5]] = os.path.join(d, entry)
        checker = perms.Checker()
        for name, path in sorted(files.items()):
            if not set(name) <= NAME_CHARS or name.count("@") > 1:
                self.errors[name] = UnitError(path, "invalid unit file name")
                continue
            unsafe = checker.problem(path)
            if unsafe:
                self.errors[name] = UnitError(path, perms.refusal(unsafe))
                continue
            try:
                raw, text = read_raw(path)
                if name.endswith("@"):
                    self._add_template(name, path, raw, text, "toml", ())
                elif "@" not in name:
                    self.units[name] = build(name, path, raw, text)
            except UnitError as e:
                self.errors[name] = e
        # Instances that have files: merged over their template.
        for name in sorted(files):
            if "@" in name and not name.endswith("@") and name not in self.errors:
                try:
                    unit = self._instance(name, files)
                except UnitError as e:
                    self.errors[name] = e
                else:
                    if unit is not None:
                        self.units[name] = unit
        if self.import_root is not None:
            self._import(files)
        self._resolve_aliases()
        self._mount_dependencies(list(self.units.values()))
        self._check_requires()

    def _add_template(self, name, path, raw, source, origin, notes) -> None:
        """Kept for instances made later (in PID 1, which must not split command strings:
        they are split here), once checked with a stand-in instance."""
        raw = {section: {k: _split_commands(k, v) for k, v in body.items()}
               for section, body in raw.items()}
        build(name, path, raw, source, "instance", origin, notes)
        self.templates[name] = {"path": path, "raw": raw, "source": source, "origin": origin,
                                "notes": [list(n) for n in notes]}

    def _import(self, files: dict[str, str]) -> None:
        from vigil.translate import imports
        found = imports.collect(self.import_root, files)
        for name, (path, reason, key, line) in found.errors.items():
            self.errors[name] = UnitError(path, reason, key, line)
        for name, entry in sorted(found.entries.items()):
            notes = tuple(tuple(n) for n in entry.notes)
            try:
                if entry.template:
                    self._add_template(name, entry.path, entry.raw, entry.positions,
                                       entry.origin, notes)
                    continue
                self.units[name] = build(name, entry.path, entry.raw, entry.positions,
                                         _instance_of(name), entry.origin, notes,
                                         entry.masked)
                self.sources[name] = entry.raw
                self._where[name] = entry.positions
            except UnitError as e:
                self.errors[name] = e
        self.aliases.update(found.aliases)
        self.gettys, self.runlevel = dict(found.gettys), found.runlevel
        self.shadowed.update(found.shadowed)
        self.skipped = {n: list(v) for n, v in found.skipped.items()}
        self.masks, self.no_header = dict(found.masks), [list(x) for x in found.no_header]
        self.handled, self.ignored = [list(x) for x in found.handled], list(found.ignored)

    def _resolve_aliases(self) -> None:
        """Each unit's `aliases` answer for it, unless a unit has that name; dependencies
        naming an alias then name the unit itself."""
        for name, unit in sorted(self.units.items(), key=lambda x: (x[1].origin != "toml",
                                                                    x[0])):
            for alias in unit.aliases:
                owner = self.aliases.get(alias)
                if alias in self.units or alias in self.templates:
                    if alias != name:
                        self.warnings.append(f"{name}: alias {alias} ignored: a unit has "
                                             "that name")
                elif owner and owner != name:
                    self.warnings.append(f"{name}: alias {alias} ignored: it is {owner}'s")
                else:
                    self.aliases[alias] = name
        for alias in [a for a in self.aliases if a in self.units]:
            del self.aliases[alias]   # a real unit of that name wins (its file shadows)
        for unit in self.units.values():
            self._rewrite(unit)

    def resolve(self, name: str) -> str:
        """The unit an alias stands for (an instance of an aliased template too)."""
        seen: set[str] = set()
        while name not in seen:
            seen.add(name)
            if name in self.aliases:
                name = self.aliases[name]
            elif "@" in name and name.split("@", 1)[0] + "@" in self.aliases:
                prefix, instance = name.split("@", 1)
                name = self.aliases[prefix + "@"] + instance
            else:
                break
        return name

    def _rewrite(self, unit: Unit) -> None:
        if not self.aliases:
            return
        for key in DEPENDENCY_KEYS:
            names = getattr(unit, key)
            resolved = tuple(dict.fromkeys(self.resolve(n) for n in names))
            if resolved != names:
                setattr(unit, key, resolved)

    def _instance(self, name: str, files: dict[str, str] | None = None) -> Unit | None:
        prefix, instance = name.split("@", 1)
        template = self.templates.get(prefix + "@")
        path = (files or {}).get(name)
        if path is None and template is None:
            return None
        raw, text = read_raw(path) if path else ({}, "")
        if template is None:
            return build(name, path, raw, text, instance)
        merged = _merge(template["raw"], raw)
        try:
            return build(name, path or template["path"], merged, text or template["source"],
                         instance, template["origin"] if not path else "toml",
                         tuple(tuple(n) for n in template["notes"]))
        except UnitError as e:
            if path:  # report against the file the key came from
                raise UnitError(path, e.reason, e.key, _line_of(text, *e.key.split(".", 1))
                                if "." in e.key else 0) from None
            raise

    def get(self, name: str) -> Unit | None:
        """A unit by name or alias, making a template instance on demand."""
        name = self.resolve(name)
        if name in self.units or name in self.errors:
            return self.units.get(name)
        if "@" in name and not name.endswith("@"):
            try:
                unit = self._instance(name)
            except UnitError as e:
                self.errors[name] = e
                return None
            if unit is not None:
                self._rewrite(unit)
                self._mount_dependencies([unit])
                self.units[name] = unit
                self._check_requires()
            return unit
        return None

    def _mount_dependencies(self, units: list[Unit]) -> None:
        """A unit that names a path on a mount unit's file system (in its commands,
        working_dir, root_directory, requires_mounts; a mount unit under another one)
        requires that mount unit and starts after it. Stage 1 makes a mount unit for each
        fstab entry whose device was not there (boot.fstab.mount_units): what needs it
        waits for it, the rest of the boot does not."""
        mounts = {mount_point(n): n for n in self.units if n.endswith(".mount")}
        if not mounts:
            return
        for unit in units:
            needed = [m for point, m in sorted(mounts.items()) if m != unit.name and any(
                path == point or path.startswith(point.rstrip("/") + "/")
                for path in named_paths(unit))]
            if needed:
                unit.requires = tuple(dict.fromkeys((*unit.requires, *needed)))
                unit.after = tuple(dict.fromkeys((*unit.after, *needed)))

    def _check_requires(self) -> None:
        """A unit that requires a unit that does not exist is an error (wants is not)."""
        changed = True
        while changed:  # dropping one unit can break another that requires it
            changed = False
            for name, unit in sorted(self.units.items()):
                for dep in unit.requires:
                    if self.get(dep) is None:
                        reason = (f"required unit {dep!r} is invalid" if dep in self.errors
                                  else f"required unit {dep!r} does not exist")
                        path, line = _locate(unit.path, self._where.get(name) or
                                             read_text(unit.path), "unit", "requires")
                        self.errors[name] = UnitError(path, reason, key="unit.requires",
                                                      line=line)
                        del self.units[name]
                        changed = True
                        break
                if changed:
                    break

    # --- passing a catalog from the parsing child to PID 1 (see read_in_child) -------
    def to_json(self) -> dict:
        return {"dirs": self.dirs, "import_root": self.import_root,
                "units": {n: u.to_json() for n, u in self.units.items()},
                "errors": {n: [e.path, e.reason, e.key, e.line] for n, e in self.errors.items()},
                "templates": self.templates, "aliases": self.aliases, "gettys": self.gettys,
                "runlevel": self.runlevel, **{r: getattr(self, r) for r in REPORTS}}

    @classmethod
    def from_json(cls, data: dict) -> "Catalog":
        c = cls(data["dirs"], read=False, import_root=data.get("import_root"))
        c.units = {n: Unit.from_json(n, u) for n, u in data["units"].items()}
        c.errors = {n: UnitError(*e) for n, e in data["errors"].items()}
        c.templates = dict(data["templates"])
        c.aliases, c.gettys = dict(data.get("aliases", {})), dict(data.get("gettys", {}))
        c.runlevel = data.get("runlevel", "2")
        for report in REPORTS:
            setattr(c, report, data.get(report, getattr(c, report)))
        return c


def _instance_of(name: str) -> str:
    return name.split("@", 1)[1] if "@" in name else ""


def _split_commands(key: str, value):
    """A template's command strings as lists (shlex runs here, in the parsing child)."""
    if key == "exec" and isinstance(value, str):
        try:
            return command.split(value)
        except ValueError:
            return value
    if key.startswith("exec_") and isinstance(value, (str, list)):
        items = [value] if isinstance(value, str) else value
        out = []
        for item in items:
            try:
                out.append(command.split(item) if isinstance(item, str) else item)
            except ValueError:
                out.append(item)
        return out
    return value


def _read_as_json(dirs: list[str], import_root: str | None) -> dict:
    return Catalog(dirs, import_root=import_root).to_json()


def read_in_child(dirs: list[str], import_root: str | None = None) -> Catalog:
    """Parse the unit files (and import the machine's units under import_root) in a forked
    child (see vigil.child): PID 1 never imports the TOML parser or the translators, and a
    parser bug or a hostile file can at worst kill that child."""
    from vigil import child
    try:
        return Catalog.from_json(child.run(_read_as_json, dirs, import_root))
    except child.ChildFailed as e:
        failed = Catalog(dirs, read=False, import_root=import_root)
        failed.errors["*"] = UnitError(" ".join(dirs), f"the unit parser failed: {e}")
        return failed
