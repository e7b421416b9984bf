"""systemd's unit directories under an import root: which file each unit comes from, its
drop-ins, its .wants/.requires links, aliases, masks, and what is enabled.

Precedence is systemd's: /etc/systemd/system over /run/systemd/system over
/lib/systemd/system and /usr/lib/systemd/system. A /dev/null link is a mask only in the
first two (the admin's): Debian's systemd package puts such links in /lib to disable the
sysvinit scripts it replaces, which a machine leaving sysvinit still needs.
"""

import os

from vigil.conditions import file_is_executable
from vigil.translate import files
from vigil.translate.systemd import OUT_OF_SCOPE

DIRS = ("/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system",
        "/usr/lib/systemd/system")
ADMIN_DIRS = DIRS[:2]
SUFFIXES = ("service", "target")
BOOT_TARGETS = ("multi-user.target", "graphical.target", "default.target")


def template_of(name: str) -> str | None:
    """getty@tty1.service -> getty@.service (None for a name that is no instance)."""
    prefix, at, rest = name.partition("@")
    if not at or rest.startswith("."):
        return None
    return f"{prefix}@.{rest.rpartition('.')[2]}"


class UnitDirs:
    def __init__(self, root: str):
        self.root = root
        self.dirs = self._real_dirs()
        self.files: dict[str, str] = {}         # systemd name -> host path of its file
        self.entries: dict[str, str] = {}       # systemd name -> where it was seen
        self.shadowed: dict[str, list[str]] = {}
        self.aliases: dict[str, str] = {}       # alias name -> the name it links to
        self.masked: dict[str, str] = {}        # name -> machine path of the /dev/null link
        self.vendor_masked: dict[str, str] = {}
        self.errors: dict[str, tuple[str, str]] = {}   # name -> (machine path, reason)
        self.ignored: list[str] = []            # .socket, .timer... (out of scope)
        self._scan()

    def _real_dirs(self) -> list[str]:
        """The directories that exist, each once (/lib is /usr/lib on a merged-/usr root)."""
        out, seen = [], set()
        for d in DIRS:
            host = files.inside(self.root, d)
            real = os.path.realpath(host)
            if os.path.isdir(host) and real not in seen:
                seen.add(real)
                out.append(d)
        return out

    def _scan(self) -> None:
        for d in self.dirs:
            host_dir = files.inside(self.root, d)
            for entry in files.listdir(host_dir):
                self._entry(d, entry, os.path.join(host_dir, entry))
        for alias, target in list(self.aliases.items()):
            if target not in self.files and target not in self.entries:
                self.errors.setdefault(alias, (self.entries.get(alias, alias),
                                               f"an alias of {target}, which does not exist"))

    def _entry(self, d: str, entry: str, host: str) -> None:
        suffix = entry.rpartition(".")[2]
        if entry.startswith(".") or "." not in entry:
            return
        if suffix in OUT_OF_SCOPE:
            if not os.path.isdir(host):
                self.ignored.append(files.inside(self.root, f"{d}/{entry}"))
            return
        if suffix not in SUFFIXES:
            return   # NAME.service.d, NAME.target.wants, README... : not unit files
        shown = files.inside(self.root, f"{d}/{entry}")
        if entry in self.entries:
            self.shadowed.setdefault(entry, []).append(shown)
            return
        self.entries[entry] = shown
        try:
            final = files.resolve(self.root, host)
        except files.LinkProblem as e:
            self.errors[entry] = (shown, str(e))
            return
        if final is None:
            (self.masked if d in ADMIN_DIRS else self.vendor_masked)[entry] = shown
            return
        if os.path.isdir(final):
            self.errors[entry] = (shown, "a directory, not a unit file")
            return
        base = os.path.basename(final)
        if base != entry:
            self.aliases[entry] = base
            if base.rpartition(".")[2] != suffix:
                self.errors[entry] = (shown, f"an alias of {base}, a unit of another type")
            elif base not in self.entries and not os.path.dirname(final).startswith(
                    tuple(files.inside(self.root, x) for x in self.dirs)):
                self.files[base] = final   # linked from outside the unit directories
            return
        self.files[entry] = final

    # --- what a unit is made of ---------------------------------------------------------
    def canonical(self, name: str) -> str:
        """Follow aliases (syslog.service -> rsyslog.service; autovt@tty1.service ->
        getty@tty1.service); a loop of aliases stops where it closes."""
        seen = set()
        while name not in seen:
            seen.add(name)
            if name in self.aliases:
                name = self.aliases[name]
                continue
            template = template_of(name)
            if template in self.aliases:
                instance = name.split("@", 1)[1].rpartition(".")[0]
                name = self.aliases[template].replace("@.", f"@{instance}.", 1)
                continue
            break
        return name

    def file_of(self, name: str) -> str | None:
        """The file a unit is read from: its own, or its template's."""
        return self.files.get(name) or self.files.get(template_of(name) or "")

    def dropins(self, name: str) -> list[tuple[str, str]]:
        """(file, path to show) of NAME.d/*.conf in the order they apply: by file name;
        of two with the same name the higher directory's wins (a /dev/null one removes it);
        an instance's own drop-ins win over its template's."""
        chosen: dict[str, tuple[str, str] | None] = {}
        names = [name] + ([template_of(name)] if template_of(name) else [])
        for d in self.dirs:
            for n in names:
                dropin_dir = f"{d}/{n}.d"
                host_dir = files.inside(self.root, dropin_dir)
                for conf in files.listdir(host_dir):
                    if not conf.endswith(".conf") or conf in chosen:
                        continue
                    try:
                        final = files.resolve(self.root, os.path.join(host_dir, conf))
                    except files.LinkProblem:
                        final = None
                    chosen[conf] = (final, os.path.join(host_dir, conf)) if final else None
        return [chosen[c] for c in sorted(chosen) if chosen[c]]

    def links(self, name: str, kind: str, dirs=None) -> list[str]:
        """Unit names linked in NAME.wants/ or NAME.requires/ of these directories."""
        out: list[str] = []
        for d in dirs or self.dirs:
            for entry in files.listdir(files.inside(self.root, f"{d}/{name}.{kind}")):
                if entry not in out and not entry.startswith("."):
                    out.append(entry)
        return out

    def enabled(self) -> set[str]:
        """What the .wants/.requires links of the admin's directories start at boot: those of
        multi-user.target, graphical.target and default.target, and, through every target
        they name, transitively."""
        found: set[str] = set()
        todo = list(BOOT_TARGETS)
        done: set[str] = set()
        while todo:
            target = self.canonical(todo.pop())
            if target in done:
                continue
            done.add(target)
            names = {target} | {a for a in self.aliases if self.canonical(a) == target}
            for n in sorted(names):
                for kind in ("wants", "requires"):
                    for entry in self.links(n, kind, [d for d in self.dirs
                                                      if d in ADMIN_DIRS]):
                        found.add(entry)
                        if entry.endswith(".target"):
                            todo.append(entry)
        if self._rc_local_wanted():
            found.add("rc-local.service")
        return found

    def _rc_local_wanted(self) -> bool:
        """What systemd's rc-local generator does: an executable /etc/rc.local pulls
        rc-local.service in. Not when initscripts' /etc/init.d/rc.local is there: its rc
        links run the same file, and it must run once."""
        return ("rc-local.service" in self.files
                and file_is_executable(files.inside(self.root, "/etc/rc.local"))
                and not os.path.exists(files.inside(self.root, "/etc/init.d/rc.local")))
