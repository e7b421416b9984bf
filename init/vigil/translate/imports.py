"""Every unit a machine already has, under an import root: systemd units, then init.d scripts
for the names no systemd unit has, then the user's lines of /etc/inittab.

collect() finds and translates them and decides what is enabled (the .wants/.requires links
of /etc/systemd/system, and the S links of /etc/rcS.d and of the default run level's
rcN.d), masked, aliased, shadowed and skipped. vigil.unit.Catalog builds the Units.

Two orderings sysvinit gave implicitly are made explicit for init.d scripts: the scripts
enabled in rcS.d start before those of the run level (sysvinit ran rcS.d to its end before
rcN.d), and a script whose header says $all starts after every other enabled init.d script
that does not say $all (insserv puts those last).
"""

import os
from dataclasses import dataclass, field

from vigil.translate import files, initd, inittab, skip, syntax, systemd
from vigil.translate.specifiers import Context, escape
from vigil.translate.unitdirs import UnitDirs

INITD_DIR = "/etc/init.d"
NOT_SCRIPTS = ("README", "skeleton", "functions")
BACKUPS = (".dpkg-dist", ".dpkg-old", ".dpkg-new", ".dpkg-bak", ".dpkg-tmp", ".ucf-dist",
           ".ucf-old", ".ucf-new", ".orig", ".bak", ".rpmsave", ".rpmnew", "~")
DEP_KEYS = ("requires", "requisite", "wants", "after", "before", "part_of", "conflicts")


@dataclass
class Entry:
    name: str
    path: str                 # machine path of the file it was read from ("" if made up)
    origin: str
    raw: dict
    positions: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    template: bool = False
    masked: bool = False
    later: list = field(default_factory=list)   # started at boot with it, after it


@dataclass
class Imported:
    entries: dict[str, Entry] = field(default_factory=dict)
    errors: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)
    shadowed: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, tuple[str, str]] = field(default_factory=dict)    # name -> path, why
    masks: dict[str, str] = field(default_factory=dict)                 # name -> link path
    no_header: list[tuple[str, str]] = field(default_factory=list)      # path, why
    handled: list[tuple[str, int, str]] = field(default_factory=list)   # inittab lines
    ignored: list[str] = field(default_factory=list)                    # .socket, .timer...
    aliases: dict[str, str] = field(default_factory=dict)               # alias -> name
    gettys: dict[str, str] = field(default_factory=dict)                # unit -> tty
    runlevel: str = "2"


class _Collector:
    def __init__(self, root: str, taken: dict[str, str]):
        self.root = os.path.abspath(root)
        self.taken = taken
        self.out = Imported()
        self.dirs = UnitDirs(self.root)
        self.users, self.groups = files.passwd(self.root)
        self.hostname = files.first_line(self.root, "/etc/hostname")
        self.machine_id = files.first_line(self.root, "/etc/machine-id")

    def host(self, path: str) -> str:
        return files.inside(self.root, path)

    def owner(self, name: str, path: str) -> bool:
        """True when no earlier source gave this name (else it is recorded as shadowed)."""
        first = self.taken.get(name) or (self.out.entries[name].path
                                         if name in self.out.entries else None)
        if first is None:
            return True
        self.out.shadowed.setdefault(name, [first]).append(path)
        return False

    # --- systemd ------------------------------------------------------------------------
    def read_systemd(self) -> None:
        d = self.dirs
        self.out.ignored = list(d.ignored)
        for name, (path, why) in sorted(d.errors.items()):
            vname = systemd.vigil_name(name) or name
            self.out.errors[vname] = (path, why, "", 0)
        for name, paths in d.shadowed.items():
            self.out.shadowed[systemd.vigil_name(name) or name] = [d.entries[name], *paths]
        for alias in sorted(d.aliases):
            va, vt = systemd.vigil_name(alias), systemd.vigil_name(d.canonical(alias))
            if va and vt and va != vt:
                self.out.aliases[va] = vt
        for name, link in sorted(d.masked.items()):
            vname = systemd.vigil_name(name)
            if vname:
                self.out.masks[vname] = link
        for name in sorted(d.files):
            vname = systemd.vigil_name(name)
            if vname is None or vname in self.out.errors:
                continue
            why = skip.systemd_reason(vname)
            if why:
                self.out.skipped[vname] = (d.entries.get(name, d.files[name]), why)
                continue
            self.translate_systemd(name, vname, d.files[name])
        for name in sorted(d.masked):   # a mask over a file of a lower directory
            vname = systemd.vigil_name(name)
            lower = d.shadowed.get(name, [])
            if vname and lower and vname not in self.out.skipped:
                try:
                    final = files.resolve(self.root, lower[0])
                except files.LinkProblem:
                    final = None
                if final:
                    self.translate_systemd(name, vname, final, masked=True)

    def context(self, name: str) -> Context:
        stem, _, suffix = name.rpartition(".")
        prefix, at, instance = stem.partition("@")
        return Context(prefix if at else stem, suffix, template=bool(at) and not instance,
                       instance=instance, passwd=self.users, groups=self.groups,
                       hostname=self.hostname, machine_id=self.machine_id)

    def translate_systemd(self, name: str, vname: str, host: str, masked: bool = False,
                          path: str = "") -> None:
        path = path or self.dirs.entries.get(name) or host
        try:
            texts = [(path, syntax.decode(files.read_bytes(host), path))]
            for dhost, dpath in self.dirs.dropins(name):
                texts.append((dpath, syntax.decode(files.read_bytes(dhost), dpath)))
            t = systemd.translate(name, texts, self.context(name))
        except syntax.SyntaxProblem as e:
            self.out.errors[vname] = (e.path, e.reason, "", e.line)
            return
        except systemd.TranslateError as e:
            self.out.errors[vname] = (e.path, e.reason, e.key, e.line)
            return
        except files.Unsafe as e:
            self.out.errors[vname] = (e.path, e.reason, "", 0)
            return
        except OSError as e:
            self.out.errors[vname] = (path, f"cannot read: {e.strerror or e}", "", 0)
            return
        self.add_links(name, path, t)
        entry = Entry(vname, path, "systemd", t.raw, t.positions, t.notes,
                      template=vname.endswith("@"), masked=masked, later=t.later)
        if self.owner(vname, path):
            self.out.entries[vname] = entry

    def add_links(self, name: str, path: str, t: systemd.Translation) -> None:
        """NAME.wants/ and NAME.requires/ links are Wants= and Requires= (systemd's way)."""
        for kind, key in (("wants", "wants"), ("requires", "requires")):
            for link in self.dirs.links(name, kind):
                target, why = systemd.dependency(link, strong=kind == "requires")
                if why:
                    t.notes.append((path, 0, f"{name}.{kind}/{link}: {why}"))
                if target and target not in t.raw["unit"].get(key, []):
                    t.raw["unit"].setdefault(key, []).append(target)

    def instances(self, enabled: set[str]) -> None:
        """Enabled instances of templates (getty@tty1 from getty@.service), translated with
        their instance and their own drop-ins."""
        for name in sorted(enabled):
            vname = systemd.vigil_name(name)
            host = self.dirs.file_of(name)
            if not vname or "@" not in vname or vname.endswith("@") or host is None \
                    or vname in self.out.entries or vname in self.taken:
                continue
            template = vname.split("@", 1)[0] + "@"
            why = skip.systemd_reason(vname)
            if why or template in self.out.skipped:
                self.out.skipped.setdefault(vname, (host, why or "its template "
                                                    "is skipped"))
                continue
            if template in self.out.entries:
                self.translate_systemd(name, vname, host, path=self.out.entries[template].path)

    # --- init.d -------------------------------------------------------------------------
    def scripts(self) -> list[tuple[str, str]]:
        """(name, file) of the scripts in /etc/init.d, skipped ones put aside."""
        host_dir = self.host(INITD_DIR)
        out = []
        for name in files.listdir(host_dir):
            if name.startswith(".") or name in NOT_SCRIPTS or name.endswith(BACKUPS):
                continue
            path = os.path.join(host_dir, name)
            if name in skip.INITD:
                self.out.skipped[name] = (path, skip.INITD[name])  # its Provides still count
            try:
                final = files.resolve(self.root, path)
            except files.LinkProblem as e:
                if name not in skip.INITD:
                    self.out.no_header.append((path, str(e)))
                continue
            if final is None or not os.path.isfile(final):
                if name not in skip.INITD:
                    self.out.no_header.append((path, "not a regular file"))
                continue
            out.append((name, final))
        return out

    def read_initd(self) -> list[initd.Translation]:
        scripts = self.scripts()
        texts: dict[str, str] = {}
        provided: dict[str, str] = {}   # Provides name -> script
        for name, final in scripts:
            path = self.host(f"{INITD_DIR}/{name}")
            try:
                text = syntax.decode(files.read_bytes(final), path)
                h = initd.header(text)
            except files.Unsafe as e:
                if name not in skip.INITD:
                    self.out.errors[name] = (path, e.reason, "", 0)
                continue
            except (syntax.SyntaxProblem, initd.NoHeader, OSError) as e:
                if name not in skip.INITD:
                    self.out.no_header.append((path, str(getattr(e, "reason", e))))
                continue
            texts[name] = text
            for p in h.words("Provides"):
                provided.setdefault(p, name)
        facts = initd.Facts(self.lookup_factory(provided), self.skipped_factory(provided))
        done = []
        for name in sorted(texts):
            path = self.host(f"{INITD_DIR}/{name}")
            if name in skip.INITD:
                continue
            systemd_unit = self.out.aliases.get(name, name)
            if systemd_unit in self.out.entries and self.out.entries[systemd_unit].origin \
                    == "systemd" or systemd_unit in self.out.skipped:
                self.out.shadowed.setdefault(systemd_unit, [
                    self.out.entries[systemd_unit].path if systemd_unit in self.out.entries
                    else self.out.skipped[systemd_unit][0]]).append(path)
                continue
            t = initd.translate(name, path, texts[name], path, facts)
            if self.owner(name, path):
                self.out.entries[name] = Entry(name, path, "init.d", t.raw, t.positions,
                                               t.notes, masked=name in self.out.masks)
                done.append(t)
        return done

    def own_aliases(self) -> None:
        """Alias= and Provides: names answer for their unit too (where no unit has them)."""
        for name, entry in sorted(self.out.entries.items()):
            for alias in entry.raw["unit"].get("aliases", ()):
                if alias not in self.out.entries and alias not in self.taken:
                    self.out.aliases.setdefault(alias, name)

    def exists(self, name: str) -> bool:
        return name in self.out.entries or name in self.taken or name in self.out.aliases

    def lookup_factory(self, provided: dict[str, str]):
        def lookup(name: str) -> str | None:
            if self.exists(name):
                return self.out.aliases.get(name, name)
            script = provided.get(name)
            if script and script not in skip.INITD:
                return self.out.aliases.get(script, script)
            return None
        return lookup

    def skipped_factory(self, provided: dict[str, str]):
        def skipped(name: str) -> str | None:
            script = provided.get(name, name)
            if script in skip.INITD:
                return skip.INITD[script]
            if name in self.out.skipped and not self.exists(name):
                return self.out.skipped[name][1]
            return None
        return skipped

    # --- what starts at boot -------------------------------------------------------------
    def rc_links(self, level: str) -> tuple[set[str], set[str]]:
        """(names of S links in rcS.d, names of S links in rc<level>.d)."""
        found = []
        for d in ("/etc/rcS.d", f"/etc/rc{level}.d"):
            names = set()
            for entry in files.listdir(self.host(d)):
                if entry.startswith("S") and len(entry) > 3 and entry[1:3].isdigit():
                    names.add(entry[3:])
            found.append(names)
        return found[0], found[1]

    def resolve(self, name: str) -> str:
        seen = set()
        while name in self.out.aliases and name not in seen:
            seen.add(name)
            name = self.out.aliases[name]
        return name


def collect(root: str, taken: dict[str, str] | None = None) -> Imported:
    """Everything under root; taken are names (-> path) vigil's own units already give."""
    c = _Collector(root, dict(taken or {}))
    c.read_systemd()
    systemd_enabled = c.dirs.enabled()
    c.instances(systemd_enabled)
    c.own_aliases()
    scripts = c.read_initd()
    c.own_aliases()
    try:
        files.check(c.host("/etc/inittab"))
        tab_text = "\n".join(files.read_lines(c.root, "/etc/inittab"))
    except files.Unsafe as e:
        c.out.errors["/etc/inittab"] = (e.path, e.reason, "", 0)
        tab_text = ""
    tab = inittab.parse(tab_text, c.host("/etc/inittab"))
    c.out.runlevel = tab.default_level
    early, level = c.rc_links(tab.default_level)
    enabled = {c.resolve(v) for v in (systemd.vigil_name(c.dirs.canonical(n)) for n in
                                      systemd_enabled) if v}
    enabled |= {c.resolve(n) for n in early | level}
    _pulled_later(c, enabled)
    for name, entry in c.out.entries.items():
        on = name in enabled and not entry.masked and not entry.template
        entry.raw["unit"]["enabled"] = on
    _inittab(c, tab)
    _sysv_order(c, scripts, {c.resolve(n) for n in early}, enabled)
    _missing_targets(c)
    return c.out


def _pulled_later(c: _Collector, enabled: set[str]) -> None:
    """What an enabled unit pulls in but is ordered before (networking's
    Wants=network.target) starts at boot too: else nothing starts network.target, and
    what is After=network.target (sshd) would not wait for the network."""
    todo = sorted(enabled)
    while todo:
        entry = c.out.entries.get(todo.pop())
        for name in entry.later if entry and not entry.masked else ():
            name = c.resolve(name)
            if name not in enabled:
                enabled.add(name)
                todo.append(name)


def _inittab(c: _Collector, tab: inittab.Inittab) -> None:
    c.out.handled = tab.handled
    for path, line, why in tab.problems:
        c.out.errors[f"/etc/inittab:{line}"] = (path, why, "", line)
    for u in tab.units:
        path = c.host("/etc/inittab")
        if c.owner(u.name, path):
            positions = {f"{s}.{k}": (path, u.line) for s in u.raw for k in u.raw[s]}
            c.out.entries[u.name] = Entry(u.name, path, "inittab", escape(u.raw), positions,
                                          u.notes)
            if u.tty:
                c.out.gettys[u.name] = u.tty


def _sysv_order(c: _Collector, scripts: list[initd.Translation], early: set[str],
                enabled: set[str]) -> None:
    started = [t for t in scripts if t.name in enabled and not c.out.entries[t.name].masked]
    first = sorted(t.name for t in started if t.name in early)
    late = sorted(t.name for t in started if t.name not in early and not t.uses_all)
    for t in started:
        unit = c.out.entries[t.name].raw["unit"]
        after = unit.setdefault("after", [])
        if t.name not in early and first:
            after += [n for n in first if n not in after and n != t.name]
        if t.uses_all:
            others = [n for n in first + late if n != t.name and n not in after]
            after += others
            c.out.entries[t.name].notes.append((c.out.entries[t.name].path, 0, (
                f"$all: starts after the {len(others)} other enabled init.d scripts")))
        if not after:
            del unit["after"]


def _missing_targets(c: _Collector) -> None:
    """A .target that imported units name but the machine has no file for (no systemd
    installed) becomes an empty group, so that ordering through it still holds."""
    named = {dep for e in c.out.entries.values() for key in DEP_KEYS
             for dep in e.raw["unit"].get(key, ()) if dep.endswith(".target")}
    for name in sorted(named):
        if c.exists(name) or name in c.out.skipped or name in c.out.errors:
            continue
        c.out.entries[name] = Entry(
            name, "", "systemd", {"unit": {"description": f"{name} (made by vigil)",
                                           "enabled": False},
                                  "service": {"type": "group"}},
            notes=[("", 0, f"{name}: no unit file on this machine; made by vigil as an "
                    "empty group so that the units ordered against it keep their order")])
