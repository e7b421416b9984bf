"""Unit files: TOML text in, validated Unit objects (or errors naming file, line, key) out.

The schema table below is the single description of every key: its section, type,
default and check. Parsing is pure: it reads files and returns values, it starts nothing.
tomllib and shlex are imported only when a file is parsed, so PID 1 does not carry them
until it reads units.
"""

import os
import signal

from vigil.files import read_text

# Stock units, then units generated at boot for this machine (udev), then the admin's.
RUNTIME_UNITS = "/run/vigil/units"
UNIT_DIRS = ["/usr/lib/vigil/units", RUNTIME_UNITS, "/etc/vigil/units"]
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@-")
TYPES = ("simple", "notify", "oneshot", "forking")
RESTARTS = ("always", "on-failure", "never")
LOG_MODES = ("file", "console", "null")


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


def _exec(v):
    if isinstance(v, str):
        import shlex
        try:
            v = shlex.split(v)
        except ValueError as e:
            raise ValueError(f"cannot split command line: {e}") from None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError("expected a list of strings or a command line string")
    if not v or not v[0]:
        raise ValueError("empty command")
    return tuple(v)


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


def _environment(v):
    if not isinstance(v, dict):
        raise ValueError("expected a table of NAME = \"value\"")
    for k, x in v.items():
        if not isinstance(x, str) or "=" in k or not k:
            raise ValueError(f"{k!r}: expected NAME = \"string\"")
    return tuple(sorted(v.items()))


def _umask(v):
    if isinstance(v, str):
        try:
            v = int(v, 8)
        except ValueError:
            raise ValueError(f"expected an octal string like \"022\", got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0o777:
        raise ValueError(f"expected an octal umask between 000 and 777, got {v!r}")
    return v


# key: (section, check, default). A default of None means "not set".
SCHEMA = {
    "description": ("unit", _str, ""),
    "requires": ("unit", _names, ()),
    "wants": ("unit", _names, ()),
    "after": ("unit", _names, ()),
    "before": ("unit", _names, ()),
    "enabled": ("unit", _bool, True),
    "rescue": ("unit", _bool, False),   # also started in rescue (single-user) mode
    "type": ("service", _choice(*TYPES), "simple"),
    "exec": ("service", _exec, None),
    "pidfile": ("service", _abspath, None),
    "restart": ("service", _choice(*RESTARTS), None),  # default depends on type
    "restart_delay": ("service", _number(0), 0.1),
    "restart_delay_max": ("service", _number(0), 10),
    "start_limit_burst": ("service", _number(1, integer=True), 5),
    "start_limit_interval": ("service", _number(0), 10),
    "start_limit_cooldown": ("service", _number(0), 300),
    "start_timeout": ("service", _number(0), 90),
    "stop_signal": ("service", _signal, int(signal.SIGTERM)),
    "stop_timeout": ("service", _number(0), 10),
    "user": ("service", _str, None),
    "group": ("service", _str, None),
    "working_dir": ("service", _abspath, None),
    "environment": ("service", _environment, ()),
    "umask": ("service", _umask, 0o022),
    "tty": ("service", _abspath, None),
    "log": ("service", _choice(*LOG_MODES), "file"),
    "log_max_size": ("service", _number(1024, integer=True), 1 << 20),
    "log_keep": ("service", _number(1, integer=True), 5),
}
SECTIONS = ("unit", "service")


class Unit:
    """One validated unit. Attributes are the SCHEMA keys plus name, path and instance."""

    __slots__ = ("name", "path", "instance", *SCHEMA)

    def __init__(self, name: str, path: str, instance: str = "", **values):
        self.name, self.path, self.instance = name, path, instance
        for key, (_section, _check, default) in SCHEMA.items():
            setattr(self, key, values.get(key, default))
        if self.restart is None:
            self.restart = "never" if self.type == "oneshot" else "always"

    def settings(self) -> dict:
        return {key: getattr(self, key) for key in SCHEMA}

    def __eq__(self, other) -> bool:
        return isinstance(other, Unit) and self.name == other.name \
            and self.settings() == other.settings()

    def __repr__(self) -> str:
        return f"Unit({self.name!r})"

    def ordered_after(self) -> set[str]:
        """Units this one starts after: `requires` and `wants` imply ordering."""
        return set(self.after) | set(self.requires) | set(self.wants)


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


def _substitute(value, instance: str, name: str):
    if isinstance(value, str):
        return value.replace("%i", instance).replace("%n", name)
    if isinstance(value, list):
        return [_substitute(v, instance, name) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, instance, name) for k, v in value.items()}
    return value


def build(name: str, path: str, raw: dict, text: str, instance: str = "") -> Unit:
    """Validate a parsed file (already merged over its template) into a Unit."""
    values = {}
    for section, body in raw.items():
        for key, value in body.items():
            spec = SCHEMA.get(key)
            if spec is None or spec[0] != section:
                hint = f" (it belongs in [{spec[0]}])" if spec else _did_you_mean(key)
                raise UnitError(path, f"unknown key{hint}", key=f"{section}.{key}",
                                line=_line_of(text, section, key))
            try:
                values[key] = spec[1](_substitute(value, instance, name))
            except ValueError as e:
                raise UnitError(path, str(e), key=f"{section}.{key}",
                                line=_line_of(text, section, key)) from None
    if "exec" not in values:
        raise UnitError(path, "missing: every unit needs a command to run", key="service.exec")
    if values.get("type") == "forking" and "pidfile" not in values:
        raise UnitError(path, "a forking service needs a pidfile", key="service.pidfile")
    return Unit(name, path, instance, **values)


def _did_you_mean(key: str) -> str:
    import difflib
    close = difflib.get_close_matches(key, SCHEMA, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _merge(template: dict, instance: dict) -> dict:
    merged = {s: dict(b) for s, b in template.items()}
    for section, body in instance.items():
        merged.setdefault(section, {}).update(body)
    return merged


class Catalog:
    """The units found in a list of directories, later directories overriding earlier ones.

    `units` holds every valid unit, `errors` every file that did not validate (by unit
    name). Templates (NAME@.toml) are kept raw, so `get("NAME@X")` can make an instance
    that has no file of its own, as getty@ttyS0 is made from getty@.toml.
    """

    def __init__(self, dirs: list[str], read: bool = True):
        self.dirs = list(dirs)
        self.units: dict[str, Unit] = {}
        self.errors: dict[str, UnitError] = {}
        self.templates: dict[str, tuple[str, dict, str]] = {}
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
        for name, path in sorted(files.items()):
            if not set(name) <= NAME_CHARS or name.count("@") > 1:
                self.errors[name] = UnitError(path, "invalid unit file name")
                continue
            try:
                raw, text = read_raw(path)
                if name.endswith("@"):
                    self.templates[name] = (path, raw, text)
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
        self._check_requires()

    def _instance(self, name: str, files: dict[str, str] | None = None) -> Unit | None:
        prefix, instance = name.split("@", 1)
        template = self.templates.get(prefix + "@")
        path = (files or {}).get(name)
        if path is None and template is None:
            return None
        raw, text = read_raw(path) if path else ({}, "")
        if template is None:
            return build(name, path, raw, text, instance)
        tpath, traw, ttext = template
        merged = _merge(traw, raw)
        try:
            return build(name, path or tpath, merged, text or ttext, instance)
        except UnitError as e:
            if path:  # report against the file the key came from
                raise UnitError(path, e.reason, e.key, _line_of(text, *e.key.split(".", 1))
                                if "." in e.key else 0) from None
            raise

    def get(self, name: str) -> Unit | None:
        """A unit by name, making a template instance on demand."""
        if name in self.units or name in self.errors:
            return self.units.get(name)
        if "@" in name and not name.endswith("@"):
            try:
                unit = self._instance(name)
            except UnitError as e:
                self.errors[name] = e
                return None
            if unit is not None:
                self.units[name] = unit
                self._check_requires()
            return unit
        return None

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
                        self.errors[name] = UnitError(
                            unit.path, reason, key="unit.requires",
                            line=_line_of(read_text(unit.path), "unit", "requires"))
                        del self.units[name]
                        changed = True
                        break
                if changed:
                    break


    # --- passing a catalog from the parsing child to PID 1 (see read_in_child) -------
    def to_json(self) -> dict:
        return {"dirs": self.dirs,
                "units": {n: {"path": u.path, "instance": u.instance, **u.settings()}
                          for n, u in self.units.items()},
                "errors": {n: [e.path, e.reason, e.key, e.line] for n, e in self.errors.items()},
                "templates": self.templates}

    @classmethod
    def from_json(cls, data: dict) -> "Catalog":
        c = cls(data["dirs"], read=False)
        for name, values in data["units"].items():
            path, instance = values.pop("path"), values.pop("instance")
            for key, value in values.items():  # JSON made tuples into lists
                if isinstance(value, list):
                    values[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            c.units[name] = Unit(name, path, instance, **values)
        c.errors = {n: UnitError(*e) for n, e in data["errors"].items()}
        c.templates = {n: tuple(t) for n, t in data["templates"].items()}
        return c


def _read_as_json(dirs: list[str]) -> dict:
    return Catalog(dirs).to_json()


def read_in_child(dirs: list[str]) -> Catalog:
    """Parse the unit files in a forked child (see vigil.child): PID 1 never imports the
    TOML parser, and a parser bug or a hostile file can at worst kill that child."""
    from vigil import child
    try:
        return Catalog.from_json(child.run(_read_as_json, dirs))
    except child.ChildFailed as e:
        failed = Catalog(dirs, read=False)
        failed.errors["*"] = UnitError(" ".join(dirs), f"the unit parser failed: {e}")
        return failed
