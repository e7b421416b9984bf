"""Kernel modules, loaded by vigil itself: a small modprobe without kmod.

Why our own: PID 1 must load what the machine needs (the kernel command line, /etc/modules,
modules-load.d, and the drivers of devices that are already there) before udev or any
other program is known to exist.

The shape:
  * pure parsers, text in and tables out: modules.dep, modules.alias, modules.builtin,
    modprobe.d (options, blacklist, install, softdep, alias) and the lists of modules to load;
  * `resolve()` turns one requested name into a plan: the steps to take, each dependency
    once and before what needs it (softdep pre: first, post: last);
  * the side effects at the edge: `load()` runs a plan with finit_module(2) or init_module(2).

Rules kept from kmod: `-` and `_` are the same in module names; a blacklist only stops
lookups through an alias (a module asked for by its own name is still loaded); an `install`
command replaces loading the module; a builtin module counts as loaded; EEXIST is success.
"""

import errno
import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil import linux, logs
from vigil.files import config_files, read_text

# kmod's search order; a file name found in an earlier directory hides the later ones.
MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
                 "/usr/lib/modprobe.d", "/lib/modprobe.d")
MODULES_LOAD_DIRS = ("/etc/modules-load.d", "/run/modules-load.d",
                     "/usr/local/lib/modules-load.d", "/usr/lib/modules-load.d",
                     "/lib/modules-load.d")
MAX_ALIAS_DEPTH = 8   # alias -> alias -> ... stops here (a loop in modprobe.d must not hang boot)
KO_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


def normalize(name: str) -> str:
    """Module names treat `-` and `_` alike; kmod keeps `-` inside a [...] class of a pattern."""
    out, in_class = [], False
    for ch in name:
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        out.append("_" if ch == "-" and not in_class else ch)
    return "".join(out)


def module_name(path: str) -> str:
    """kernel/fs/ext4/ext4.ko.xz -> ext4"""
    base = os.path.basename(path)
    for suffix in KO_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return normalize(base)


# --- the kernel's tables (written by depmod) ---------------------------------------------

@dataclass(frozen=True)
class DepEntry:
    path: str                 # as written in modules.dep (relative to /lib/modules/VERSION)
    deps: tuple[str, ...]     # module names, as depmod listed them


def parse_dep(text: str) -> dict[str, DepEntry]:
    """modules.dep: `path: dep-path dep-path ...` -> name -> DepEntry."""
    table: dict[str, DepEntry] = {}
    for line in text.splitlines():
        path, sep, rest = line.partition(":")
        if not sep or not path.strip():
            continue
        path = path.strip()
        table[module_name(path)] = DepEntry(path, tuple(module_name(d) for d in rest.split()))
    return table


def parse_builtin(text: str) -> set[str]:
    """modules.builtin: one path a line."""
    return {module_name(line.strip()) for line in text.splitlines() if line.strip()}


class AliasTable:
    """Patterns from modules.alias (fnmatch-style) -> module names.

    26 000 patterns are too many to try one by one for each device, so they are grouped
    by their literal beginning (the text before the first wildcard); a lookup only tries
    the patterns whose literal beginning the name starts with.
    """

    def __init__(self) -> None:
        self._exact: dict[str, list[str]] = {}
        self._wild: dict[str, list[tuple[str, str, str]]] = {}

    def add(self, pattern: str, module: str) -> None:
        pattern, module = normalize(pattern), normalize(module)
        cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=-1)
        if cut < 0:
            self._exact.setdefault(pattern, []).append(module)
            return
        prefix = pattern[:cut]
        self._wild.setdefault(_bucket(prefix), []).append((prefix, pattern, module))

    def lookup(self, name: str) -> list[str]:
        """Every module whose pattern matches name, in file order, each once."""
        name = normalize(name)
        found = list(self._exact.get(name, []))
        for bucket in {_bucket(name), ""}:
            for prefix, pattern, module in self._wild.get(bucket, []):
                if (name.startswith(prefix) and module not in found
                        and fnmatch.fnmatchcase(name, pattern)):
                    found.append(module)
        return found


class LazyAliases:
    """modules.alias and modules.builtin.alias, read at the first lookup: a megabyte that
    takes seconds to parse under emulation, and a boot that loads modules by their names
    (and leaves coldplug to udev) never needs it."""

    def __init__(self, moddir: str):
        self.moddir = moddir
        self._table: AliasTable | None = None

    def lookup(self, name: str) -> list[str]:
        if self._table is None:
            self._table = parse_alias(read_text(os.path.join(self.moddir, "modules.alias")))
            parse_alias(read_text(os.path.join(self.moddir, "modules.builtin.alias")),
                        self._table)
        return self._table.lookup(name)


def _bucket(text: str) -> str:
    # The bus before the first ':' ("pci", "usb", ...); a pattern with a wildcard in it
    # goes to the "" bucket that every lookup tries.
    head, sep, _ = text.partition(":")
    return head if sep else ""


def parse_alias(text: str, table: AliasTable | None = None) -> AliasTable:
    """modules.alias (and modules.builtin.alias): `alias PATTERN MODULE`."""
    table = table or AliasTable()
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "alias":
            table.add(words[1], words[2])
    return table


# --- modprobe.d -------------------------------------------------------------------------

@dataclass
class ModprobeConfig:
    options: dict[str, list[str]] = field(default_factory=dict)
    blacklist: set[str] = field(default_factory=set)
    install: dict[str, str] = field(default_factory=dict)
    softdep_pre: dict[str, list[str]] = field(default_factory=dict)
    softdep_post: dict[str, list[str]] = field(default_factory=dict)
    aliases: AliasTable = field(default_factory=AliasTable)
    has_aliases: set[str] = field(default_factory=set)   # exact alias names, for a quick test
    problems: list[str] = field(default_factory=list)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Comments dropped, `\\` at the end of a line joins the next; (first line number, text)."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
            if raw.lstrip().startswith("#"):
                continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def parse_modprobe_conf(text: str, filename: str = "modprobe.conf",
                        config: ModprobeConfig | None = None) -> ModprobeConfig:
    """One modprobe.d file, added to config. Bad lines become problems naming file:line."""
    config = config or ModprobeConfig()
    for number, line in _logical_lines(text):
        words = line.split()
        verb, args = words[0], words[1:]

        def bad(why: str, number: int = number, verb: str = verb) -> None:
            config.problems.append(f"{filename}:{number}: {verb}: {why}")

        if verb == "options":
            if not args:
                bad("needs a module name")
            else:
                config.options.setdefault(normalize(args[0]), []).extend(args[1:])
        elif verb == "blacklist":
            if len(args) != 1:
                bad("needs exactly one module name")
            else:
                config.blacklist.add(normalize(args[0]))
        elif verb == "alias":
            if len(args) != 2:
                bad("needs a pattern and a module name")
            else:
                config.aliases.add(args[0], args[1])
                config.has_aliases.add(normalize(args[0]))
        elif verb == "install":
            if len(args) < 2:
                bad("needs a module name and a command")
            else:
                # The command is the rest of the line as written (it is shell text).
                command = line.split(None, 2)[2]
                config.install[normalize(args[0])] = command
        elif verb == "softdep":
            if not args:
                bad("needs a module name")
                continue
            pre, post, mode = [], [], None
            for word in args[1:]:
                if word in ("pre:", "post:"):
                    mode = word
                elif mode == "pre:":
                    pre.append(normalize(word))
                elif mode == "post:":
                    post.append(normalize(word))
                # Names before any pre:/post: are ignored, as kmod does.
            name = normalize(args[0])
            config.softdep_pre.setdefault(name, []).extend(pre)
            config.softdep_post.setdefault(name, []).extend(post)
        elif verb in ("remove", "include"):
            continue   # unloading is not our business; include is not used by Debian
        else:
            bad("unknown command")
    return config


# --- which modules to load ---------------------------------------------------------------

def parse_module_list(text: str) -> list[str]:
    """/etc/modules and modules-load.d: a name (and, in /etc/modules, its arguments) a line.

    Returns the lines as written: `name` or `name arg=value ...`. Comments start with # or ;.
    """
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            out.append(line)
    return out


def cmdline_modules(values: dict[str, list[str]]) -> list[str]:
    """modules-load= and vigil.modules= (comma-separated, each may be repeated)."""
    out: list[str] = []
    for key in ("modules-load", "modules_load", "rd.modules-load", "vigil.modules"):
        for value in values.get(key, []):
            out.extend(name for name in value.split(",") if name)
    return out


def cmdline_options(values: dict[str, list[str]]) -> tuple[dict[str, list[str]], set[str]]:
    """`module.param=value` words become options (as kmod does); modprobe.blacklist= names."""
    options: dict[str, list[str]] = {}
    blacklist: set[str] = set()
    for key, vals in values.items():
        if key == "modprobe.blacklist":
            for value in vals:
                blacklist.update(normalize(n) for n in value.split(",") if n)
            continue
        mod, dot, param = key.partition(".")
        if not dot or not mod or not param or mod in ("vigil", "rd", "systemd", "modprobe"):
            continue
        for value in vals:
            options.setdefault(normalize(mod), []).append(f"{param}={value}" if value else param)
    return options, blacklist


# --- resolution: one name -> the plan --------------------------------------------------

@dataclass(frozen=True)
class Step:
    kind: str          # "load" | "install" | "builtin"
    name: str
    path: str = ""     # load: the file, relative to the modules directory (or absolute)
    params: str = ""   # load: module parameters, space-separated
    command: str = ""  # install: the shell command that replaces loading


@dataclass
class ModuleDB:
    deps: dict[str, DepEntry]
    aliases: AliasTable | LazyAliases   # modules.alias: lookup(name) -> module names
    builtin: set[str]
    config: ModprobeConfig

    def params(self, name: str) -> str:
        return " ".join(self.config.options.get(name, []))


def lookup(db: ModuleDB, request: str) -> list[str]:
    """Module names for a request, in kmod's order: modprobe.d aliases, a real module name,
    an install command, modules.alias, builtin. Blacklisted modules found through an alias
    are dropped. An empty list: nothing is known by that name."""
    name = normalize(request)
    found = _config_alias(db, name, 0)
    if found:
        return [m for m in found if m not in db.config.blacklist]
    if name in db.deps or name in db.config.install:
        return [name]
    found = db.aliases.lookup(request)
    if found:
        return [m for m in found if m not in db.config.blacklist]
    return [name] if name in db.builtin else []


def _config_alias(db: ModuleDB, name: str, depth: int) -> list[str]:
    targets = db.config.aliases.lookup(name)
    if not targets or depth >= MAX_ALIAS_DEPTH:
        return targets
    out: list[str] = []
    for t in targets:
        known = t in db.deps or t in db.builtin or t in db.config.install
        for m in ([t] if known else _config_alias(db, t, depth + 1) or [t]):
            if m not in out:
                out.append(m)
    return out


def resolve(db: ModuleDB, request: str, extra_params: str = "") -> tuple[list[Step], list[str]]:
    """The steps to load what request names, dependencies first, each module once.
    Returns (steps, problems)."""
    names = lookup(db, request)
    if not names:
        return [], [f"module {request}: not found"]
    steps: list[Step] = []
    problems: list[str] = []
    seen: set[str] = set()
    for name in names:
        _plan(db, name, steps, problems, seen, extra_params, top=True)
    return steps, problems


def _plan(db: ModuleDB, name: str, steps: list[Step], problems: list[str], seen: set[str],
          extra: str, top: bool) -> None:
    if name in seen:
        return
    seen.add(name)
    for pre in db.config.softdep_pre.get(name, []):
        for m in lookup(db, pre):   # a missing soft dependency is not an error (kmod agrees)
            _plan(db, m, steps, problems, seen, "", top=True)
    if name in db.config.install and top:
        steps.append(Step("install", name, command=db.config.install[name]))
    elif name in db.deps:
        entry = db.deps[name]
        # Each dependency brings its own dependencies first, so the order does not rely
        # on how depmod happened to sort the line.
        for dep in entry.deps:
            _plan(db, dep, steps, problems, seen, "", top=False)
        params = " ".join(p for p in (db.params(name), extra if top else "") if p)
        steps.append(Step("load", name, path=entry.path, params=params))
    elif name in db.builtin:
        steps.append(Step("builtin", name))
    else:
        problems.append(f"module {name}: not in modules.dep")
    for post in db.config.softdep_post.get(name, []):
        for m in lookup(db, post):
            _plan(db, m, steps, problems, seen, "", top=True)


# --- reading the tables from disk --------------------------------------------------------


def parse_devname(text: str) -> list[tuple[str, str, bool, int, int]]:
    """modules.devname: `module node cMAJOR:MINOR` (b for a block device) -> (module,
    node under /dev, is a char device, major, minor). Other lines are skipped. Pure."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) != 3 or words[0].startswith("#") or words[2][:1] not in ("c", "b"):
            continue
        major, colon, minor = words[2][1:].partition(":")
        inside_dev = not words[1].startswith("/") and ".." not in words[1].split("/")
        if colon and major.isdigit() and minor.isdigit() and inside_dev:
            out.append((words[0], words[1], words[2][0] == "c", int(major), int(minor)))
    return out


def static_nodes(moddir: str, dev: str = "/dev") -> list[str]:
    """The device nodes of modules.devname that are not there (/dev/fuse, /dev/net/tun,
    /dev/loop-control...), made as kmod's static-nodes are: opening one makes the kernel
    load its module, as `losetup`, `sshfs` or a VPN expect. Mode 0600 until udev's rules
    give them theirs. Returns problems."""
    import stat
    problems = []
    for module, node, char, major, minor in parse_devname(
            read_text(os.path.join(moddir, "modules.devname"))):
        path = os.path.join(dev, node)
        if os.path.lexists(path):
            continue
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.mknod(path, 0o600 | (stat.S_IFCHR if char else stat.S_IFBLK),
                     os.makedev(major, minor))
        except OSError as e:
            problems.append(f"{path} (for module {module}): {linux.why(e)}")
    return problems


def modules_dir(root: str = "/", release: str | None = None) -> str:
    return os.path.join(root, "lib/modules", release or os.uname().release)


def load_db(moddir: str, root: str = "/",
            cmdline_values: dict[str, list[str]] | None = None) -> tuple[ModuleDB, list[str]]:
    """Everything resolution needs, from disk. Missing files give empty tables (and a
    problem if modules.dep itself is missing: then nothing can be loaded)."""
    problems = []
    dep_text = read_text(os.path.join(moddir, "modules.dep"))
    if not dep_text:
        problems.append(f"modules: no {moddir}/modules.dep (run depmod)")
    aliases = LazyAliases(moddir)
    config = ModprobeConfig()
    # depmod's modules.softdep uses the modprobe.d syntax; modprobe.d comes after it and adds.
    softdep = os.path.join(moddir, "modules.softdep")
    parse_modprobe_conf(read_text(softdep), "modules.softdep", config)
    for path in config_files(MODPROBE_DIRS, root=root):
        parse_modprobe_conf(read_text(path), path, config)
    if cmdline_values:
        options, blacklist = cmdline_options(cmdline_values)
        for name, opts in options.items():
            config.options.setdefault(name, []).extend(opts)
        config.blacklist |= blacklist
    problems.extend(f"modprobe.d: {p}" for p in config.problems)
    db = ModuleDB(parse_dep(dep_text), aliases,
                  parse_builtin(read_text(os.path.join(moddir, "modules.builtin"))), config)
    return db, problems


def wanted_modules(root: str = "/", cmdline_values: dict[str, list[str]] | None = None
                   ) -> list[tuple[str, str]]:
    """(name, extra parameters) to load at boot: the kernel command line, /etc/modules,
    then modules-load.d, in that order."""
    out: list[tuple[str, str]] = [(n, "") for n in cmdline_modules(cmdline_values or {})]
    lines = parse_module_list(read_text(os.path.join(root, "etc/modules")))
    for path in config_files(MODULES_LOAD_DIRS, root=root):
        lines.extend(parse_module_list(read_text(path)))
    for line in lines:
        name, _, params = line.partition(" ")
        out.append((name, params.strip()))
    return out


def loaded_modules() -> set[str]:
    """Loaded modules (/proc/modules) and builtin ones that show in /sys/module."""
    names = {line.split()[0] for line in read_text("/proc/modules").splitlines() if line.split()}
    try:
        names |= {normalize(n) for n in os.listdir("/sys/module")}
    except OSError:
        pass
    return names


# --- the side effects --------------------------------------------------------------------

def load_file(path: str, params: str) -> None:
    """Load one module file; raises OSError (EEXIST when it is already loaded)."""
    if path.endswith(".ko"):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.finit_module(fd, params)
        finally:
            os.close(fd)
        return
    if path.endswith(".zst") and not _have_zstd():
        _kernel_decompress(path, params)
        return
    linux.init_module(_decompress(path), params)


def _have_zstd() -> bool:
    try:
        import zstandard  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def _kernel_decompress(path: str, params: str) -> None:
    """No zstd decoder here: ask the kernel to decompress (it may know how), else say why."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.finit_module_compressed(fd, params)
    except OSError as e:
        if e.errno == errno.EEXIST:
            raise
        raise OSError(e.errno, f"{os.path.basename(path)}: zstd-compressed and no zstd "
                      "decoder is importable here (the kernel could not decompress it "
                      f"either: {e.strerror})") from None
    finally:
        os.close(fd)


def _decompress(path: str) -> bytes:
    if path.endswith(".xz"):
        import lzma
        with lzma.open(path) as f:
            return f.read()
    if path.endswith(".gz"):
        import gzip
        with gzip.open(path) as f:
            return f.read()
    if path.endswith(".zst"):
        import zstandard  # type: ignore[import-not-found]
        with open(path, "rb") as f:
            return zstandard.ZstdDecompressor().decompressobj().decompress(f.read())
    raise OSError(errno.ENOEXEC, f"{path}: unknown module file format")


def run_install(command: str) -> int:
    import subprocess
    return subprocess.run(["/bin/sh", "-c", command], check=False).returncode


def load(steps: list[Step], moddir: str, loaded: set[str],
         report: Callable[[str], None] = logs.error) -> list[str]:
    """Run a plan. Already loaded or builtin modules are skipped; loaded is updated.
    Returns the problems, each one also given to report (logged)."""
    problems = []
    for step in steps:
        if step.name in loaded:
            continue
        if step.kind == "builtin":
            loaded.add(step.name)
            continue
        if step.kind == "install":
            logs.say(f"module {step.name}: running its install command: {step.command}")
            try:
                code = run_install(step.command)
            except OSError as e:
                code, why = -1, str(e)
            else:
                why = f"exit status {code}"
            if code != 0:
                problems.append(f"module {step.name}: install command failed: {why}")
                report(problems[-1])
            else:
                loaded.add(step.name)
            continue
        path = step.path if os.path.isabs(step.path) else os.path.join(moddir, step.path)
        try:
            load_file(path, step.params)
        except OSError as e:
            if e.errno != errno.EEXIST:   # someone loaded it first: what we wanted
                problems.append(f"module {step.name}: {linux.why(e)}")
                report(problems[-1])
                continue
        loaded.add(step.name)
    return problems


def load_wanted(db: ModuleDB, moddir: str, wanted: list[tuple[str, str]],
                loaded: set[str]) -> list[str]:
    """Resolve and load each (name, params); problems are logged and returned."""
    problems = []
    for name, params in wanted:
        if normalize(name) in loaded:
            continue
        steps, found = resolve(db, name, params)
        for p in found:
            logs.error(p)
        problems.extend(found)
        problems.extend(load(steps, moddir, loaded))
    return problems


# --- coldplug without udev ----------------------------------------------------------------

def device_modaliases(sysfs: str = "/sys/devices") -> list[str]:
    """The modalias of every device that has no driver yet, each once, in walk order."""
    seen: list[str] = []
    for dirpath, _dirs, files in os.walk(sysfs):
        if "modalias" not in files or os.path.exists(os.path.join(dirpath, "driver")):
            continue
        alias = read_text(os.path.join(dirpath, "modalias")).strip()
        if alias and alias not in seen:
            seen.append(alias)
    return seen


def coldplug_modules(db: ModuleDB, modaliases: list[str]) -> list[str]:
    """Module names for these modaliases (blacklist honoured), each once. Pure."""
    out: list[str] = []
    for alias in modaliases:
        for name in db.aliases.lookup(alias):
            if name not in db.config.blacklist and name not in out:
                out.append(name)
    return out


def coldplug(db: ModuleDB, moddir: str, loaded: set[str], sysfs: str = "/sys/devices"
             ) -> list[str]:
    """Load the drivers of devices already present. A driver that fails to load here is a
    warning, not a problem: many aliases match hardware the driver then declines."""
    names = coldplug_modules(db, device_modaliases(sysfs))
    for name in names:
        if name in loaded:
            continue
        steps, problems = resolve(db, name)
        for p in problems:
            logs.warn(f"coldplug: {p}")
        load(steps, moddir, loaded, report=lambda p: logs.warn(f"coldplug: {p}"))
    return []
