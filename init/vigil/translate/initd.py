"""An init.d script with an LSB header -> vigil's raw unit dict and notes.

The unit runs `SCRIPT start`, `SCRIPT stop` and, when the script's case statement offers it,
`SCRIPT reload` (or force-reload). A script that names a pidfile (PIDFILE=..., --pidfile X,
-p X; $NAME-style variables are resolved when the script sets them plainly) is a forking
unit with that pidfile; any other is a oneshot that stays active (remain_after_exit), as
sysvinit only ran it and remembered nothing.

Dependencies: a facility ($network...) or a name in Required-Start is required when that
unit exists on the machine, else only ordered after; Should-Start is wants and after;
X-Start-Before is before. The lookup of what exists is the caller's (Facts).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil.translate.specifiers import escape

# facility -> (units it stands for, units it also wants)
FACILITIES = {
    "$local_fs": ((), ()),            # stage 1 mounted them before any unit starts
    "$network": (("network.target",), ("networking",)),
    "$remote_fs": (("remote-fs", "remote-fs.target"), ()),
    "$syslog": (("syslog",), ()),
    "$time": (("time-sync.target",), ()),
    "$named": (("nss-lookup.target",), ()),
    "$portmap": (("rpcbind",), ()),
}
STOP_KEYS = ("Required-Stop", "Should-Stop", "X-Stop-After", "Default-Stop")
KNOWN_KEYS = ("Provides", "Required-Start", "Should-Start", "X-Start-Before",
              "Default-Start", "Short-Description", "Description", *STOP_KEYS)
DAEMON_TOOLS = ("start-stop-daemon", "start_daemon", "killproc", "pidofproc", "status_of_proc")


class NoHeader(Exception):
    """The script has no usable LSB header: it is listed, not started."""


@dataclass
class Header:
    fields: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def words(self, key: str) -> list[str]:
        return self.fields.get(key, "").split()


def header(text: str) -> Header:
    """The ### BEGIN INIT INFO block: `# Key: value` lines; a line `#` followed by a tab or
    two spaces continues the value above."""
    lines = text.splitlines()
    try:
        begin = next(i for i, line in enumerate(lines) if line.strip() == "### BEGIN INIT INFO")
    except StopIteration:
        raise NoHeader("no LSB header (### BEGIN INIT INFO)") from None
    h = Header()
    last = ""
    for i in range(begin + 1, len(lines)):
        line = lines[i]
        if line.strip() == "### END INIT INFO":
            return h
        if not line.startswith("#"):
            raise NoHeader(f"line {i + 1}: the LSB header ends without ### END INIT INFO")
        body = line[1:]
        key, colon, value = body.strip().partition(":")
        is_key = bool(colon and key and " " not in key and "\t" not in key)
        indented = body.startswith("\t") or body.startswith("  ")
        if is_key and not (indented and last and key not in KNOWN_KEYS
                           and not key.startswith("X-")):
            last = key
            h.fields[last] = value.strip()
            h.lines[last] = i + 1
        elif last and body.strip():
            h.fields[last] += " " + body.strip()
    raise NoHeader("the LSB header has no ### END INIT INFO")


@dataclass
class Facts:
    """What the caller knows of the machine: a name -> its unit's vigil name, or None."""
    lookup: Callable[[str], str | None]
    skipped: Callable[[str], str | None]   # why a name is skipped, or None


@dataclass
class Translation:
    name: str
    raw: dict
    positions: dict
    notes: list
    provides: list[str]
    uses_all: bool = False


def translate(name: str, script: str, text: str, path: str, facts: Facts) -> Translation:
    """name is the script's file name, script the path to run it by, path where it was read
    (for notes). NoHeader when there is no LSB header."""
    h = header(text)
    notes: list = []
    unit: dict = {}
    positions: dict = {}

    def note(key: str, what: str) -> None:
        notes.append((path, h.lines.get(key, 0), f"{key}: {what}"))

    description = h.fields.get("Short-Description") or h.fields.get("Description", "")
    if description:
        unit["description"] = description
    deps: dict[str, list[str]] = {"requires": [], "after": [], "wants": [], "before": []}
    uses_all = False
    for key, strong in (("Required-Start", True), ("Should-Start", False)):
        for word in h.words(key):
            if word == "$all":
                uses_all = True
                continue
            for target, want in _expand(word, note, key):
                known = facts.lookup(target)
                why = facts.skipped(target)
                if why:
                    note(key, f"{target} dropped ({why})")
                elif want or not strong:
                    deps["wants"].append(known or target)
                    deps["after"].append(known or target)
                elif known:
                    deps["requires"].append(known)
                else:
                    deps["after"].append(target)
                    note(key, f"{target} does not exist on this machine: ordering only")
    for word in h.words("X-Start-Before"):
        for target, _want in _expand(word, note, "X-Start-Before"):
            if not facts.skipped(target):
                deps["before"].append(facts.lookup(target) or target)
    for key, names in deps.items():
        if names:
            unit[key] = list(dict.fromkeys(n for n in names if n != name))
            positions[f"unit.{key}"] = (path, h.lines.get(
                "X-Start-Before" if key == "before" else "Required-Start", 0))
    for key in STOP_KEYS:
        if h.fields.get(key):
            note(key, "no effect under vigil: it stops units in the reverse of the start "
                 "order")
    for key in h.fields:
        if key not in KNOWN_KEYS:
            note(key, "not carried over")
    service = _commands(script, text)
    pidfile, why = pidfile_of(text)
    if pidfile:
        service.update(type="forking", pidfile=pidfile)
    else:
        service.update(type="oneshot", remain_after_exit=True)
        notes.append((path, 0, f"no pidfile found ({why}): a oneshot that stays active"))
    service["restart"] = "never"
    # vigil runs the script on purpose: its LSB hook must not hand it back to vigilctl
    # (a `$0 stop; $0 start` inside the script has the script, not PID 1, as its parent).
    service["environment"] = {"VIGIL_SKIP_REDIRECT": "1"}
    provides = [p for p in h.words("Provides") if p != name]
    if provides:
        unit["aliases"] = provides
    raw = escape({"unit": unit, "service": service})
    return Translation(name, raw, positions, notes, provides, uses_all)


def _expand(word: str, note, key: str) -> list[tuple[str, bool]]:
    """A header word -> [(unit name, only wanted)]."""
    if word.startswith("$"):
        if word not in FACILITIES:
            note(key, f"{word}: an unknown facility, dropped")
            return []
        units, wants = FACILITIES[word]
        return [(u, False) for u in units] + [(w, True) for w in wants]
    return [(word, False)]


_LABEL = re.compile(r"^\s*\(?\s*([\w|\"' -]+)\)")


def _commands(script: str, text: str) -> dict:
    service = {"exec": [script, "start"], "exec_stop": [[script, "stop"]]}
    offered = _case_labels(text)
    for verb in ("reload", "force-reload"):
        if verb in offered:
            service["exec_reload"] = [[script, verb]]
            break
    return service


def _case_labels(text: str) -> set[str]:
    """The verbs the script's case statements offer; a branch that only answers "exit 3"
    (LSB: unimplemented feature) does not count."""
    lines = text.splitlines()
    offered: set[str] = set()
    for i, line in enumerate(lines):
        m = _LABEL.match(line)
        if not m or "=" in line.split(")")[0]:
            continue
        labels = {w.strip().strip("\"'") for w in m.group(1).split("|")}
        body = line.split(")", 1)[1]
        j = i
        while ";;" not in body and j + 1 < len(lines):
            j += 1
            body += "\n" + lines[j]
        if re.search(r"\bexit 3\b", body):
            continue
        offered |= labels
    return offered


_ASSIGN = re.compile(r"^\s*(?:export\s+|readonly\s+|local\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_PLAIN = re.compile(r"""^(?:"[^"`$]*(?:\$\{?\w+\}?[^"`$]*)*"|'[^']*'|[^\s"'`;|&<>()]*)$""")
NOT_PLAIN = "\0"
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def _assignments(text: str) -> dict[str, set[str]]:
    """Every value each variable is given; NOT_PLAIN stands for one that is computed."""
    values: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = _ASSIGN.match(line)
        if m:
            value = re.sub(r"\s+#.*$", "", m.group(2)).strip()
            plain = _PLAIN.match(value) and "$(" not in value
            values.setdefault(m.group(1), set()).add(value.strip("\"'") if plain
                                                     else NOT_PLAIN)
    return values


def _resolve(value: str, values: dict[str, set[str]], depth: int = 0) -> str | None:
    """$VAR and ${VAR} replaced by the one plain value the script gives VAR, else None."""
    def one(m):
        name = m.group(1) or m.group(2)
        got = values.get(name, set())
        if len(got) != 1 or NOT_PLAIN in got or depth > 8:
            raise LookupError(name)
        inner = _resolve(next(iter(got)), values, depth + 1)
        if inner is None:
            raise LookupError(name)
        return inner
    if "`" in value or "$(" in value:
        return None
    try:
        return _VAR.sub(one, value)
    except LookupError:
        return None


def pidfile_of(text: str) -> tuple[str, str]:
    """(pidfile, "") or ("", why none was found)."""
    values = _assignments(text)
    candidates: list[str] = []
    for var in ("PIDFILE", "PID_FILE", "PIDF"):
        if var in values:
            candidates.append("$" + var)
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        for m in re.finditer(r"--pidfile[= ]\s*(\S+)", code):
            candidates.append(m.group(1))
        if any(tool in code for tool in DAEMON_TOOLS):
            candidates += [m.group(1) for m in re.finditer(r"(?:^|\s)-p\s+(\S+)", code)]
    unresolved = ""
    for raw in candidates:
        value = _resolve(raw.strip("\"';"), values)
        if value and value.startswith("/") and "$" not in value:
            return value, ""
        unresolved = unresolved or raw
    if unresolved:
        return "", f"{unresolved} is not a plain path or variable"
    return "", "none named"
