"""Property tests of every parser of hostile text: TOML units, the systemd, init.d and
inittab translators, fstab, the kernel command line, modprobe.d and modules.dep/alias.

The contract of each: it returns, or raises only its own error type that names where
(file, line, key); what it returns is usable (a translated unit builds into a Unit or a
UnitError; a unit survives its JSON trip from the parsing child to PID 1)."""

import os

import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vigil.boot import cmdline, fstab, modules
from vigil.translate import initd, inittab, syntax, systemd
from vigil.translate.specifiers import Context
from vigil.unit import SCHEMA, Catalog, Unit, UnitError, build, read_raw

FUZZ = settings(max_examples=int(os.environ.get("VIGIL_FUZZ_EXAMPLES", "150")),
                deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])

# Text that looks like what each parser reads, and worse.
hostile = st.sampled_from(["", "\x00", "\x1b[2J", "é", "\udcff", "%", "%i", "%%", "$", "${X}",
                           "\\", "\\x2d", '"', "'", "=", "#", ";", "[", "]", "\t", "\r",
                           " ", "\n", "-", "+", "!", "@", "|", ":", "0", "-1", "1e999",
                           "inf", "99999999999999999999", "/", "..", "~"])
words = st.one_of(st.text(max_size=12), hostile, st.sampled_from(
    ["simple", "notify", "oneshot", "forking", "always", "TERM", "SIGKILL", "nobody", "root",
     "/bin/sleep", "/usr/bin/x", "infinity", "022", "0755", "on-failure", "file", "null",
     "multi-user.target", "network.target", "a.service", "getty@tty1", "append:/x"]))


def lines_of(vocabulary, sep=" "):
    line = st.lists(st.one_of(words, vocabulary), max_size=6).map(sep.join)
    return st.lists(line, max_size=25).map("\n".join)


# --- TOML units -----------------------------------------------------------------------
toml_value = st.recursive(
    st.one_of(words, st.integers(-2 ** 63, 2 ** 63 - 1), st.floats(allow_nan=False),
              st.booleans()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
section = st.dictionaries(st.one_of(st.sampled_from(sorted(SCHEMA)), st.text(max_size=10)),
                          toml_value, max_size=8)
unit_doc = st.dictionaries(st.sampled_from(["unit", "service", "install", "Service"]),
                           section, max_size=3)


@FUZZ
@given(doc=unit_doc, name=st.sampled_from(["web", "getty@", "getty@tty1", "a.b-c_d"]))
def test_a_toml_unit_builds_or_names_its_key(tmp_path, doc, name):
    path = tmp_path / f"{name}.toml"
    try:
        path.write_text(tomli_w.dumps(doc))
    except (TypeError, ValueError, UnicodeEncodeError):
        assume(False)   # not writable as TOML: nothing vigil could read
    try:
        raw, text = read_raw(str(path))
        unit = build(name, str(path), raw, text, "tty1" if "@" in name else "")
    except UnitError as e:
        assert str(e).startswith(str(path)) and e.reason
        section = e.key.split(".", 1)[0]
        assert not e.key or section in doc or section in ("unit", "service"), e.key
        return
    assert isinstance(unit, Unit)
    assert Unit.from_json(name, unit.to_json()) == unit, "survives the trip to PID 1"


valid_unit = '[unit]\ndescription = "x"\nrequires = ["a"]\n[service]\nexec = ["/bin/sleep", ' \
             '"1"]\nrestart = "always"\nenvironment = { A = "1" }\n'


@FUZZ
@given(cut=st.integers(0, len(valid_unit)), junk=st.binary(max_size=20),
       at=st.integers(0, len(valid_unit)))
def test_a_mangled_toml_file_is_an_error_with_its_file(tmp_path, cut, junk, at):
    data = valid_unit.encode()[:cut]
    data = data[:at] + junk + data[at:]
    d = tmp_path / "units"
    d.mkdir(exist_ok=True)
    (d / "web.toml").write_bytes(data)
    (d / "a.toml").write_text('[service]\nexec = ["/bin/true"]\n')
    c = Catalog([str(d)])
    assert "a" in c.units, "one bad unit never stops another"
    assert ("web" in c.units) != ("web" in c.errors)
    if "web" in c.errors:
        assert str(c.errors["web"]).startswith(str(d / "web.toml"))


# --- systemd units ----------------------------------------------------------------------
directive = st.sampled_from(
    ["ExecStart", "ExecStartPre", "ExecStop", "ExecReload", "Type", "Restart", "User",
     "Group", "Environment", "EnvironmentFile", "WorkingDirectory", "RestartSec",
     "TimeoutStopSec", "KillMode", "KillSignal", "Requires", "Wants", "After", "Before",
     "Alias", "WantedBy", "PIDFile", "UMask", "LimitNOFILE", "Nice", "ConditionPathExists",
     "RuntimeDirectory", "StandardOutput", "SuccessExitStatus", "NotifyAccess",
     "RemainAfterExit", "ProtectSystem", "Description", "Documentation", "X-Bogus"])
prefixes = st.sampled_from(["", "-", "@", "+", "!", "!!", ":", "-@"])
systemd_line = st.one_of(
    st.sampled_from(["[Unit]", "[Service]", "[Install]", "[X-Foo]", "[Service", "#c", ";c",
                     "", "\\"]),
    st.builds(lambda k, p, v, end: f"{k}={p}{v}{end}", directive, prefixes,
              st.lists(words, max_size=4).map(" ".join), st.sampled_from(["", "\\", " \\"])),
    st.text(max_size=30))
systemd_file = st.lists(systemd_line, max_size=30).map("\n".join)


def context(name: str) -> Context:
    stem, _, suffix = name.rpartition(".")
    prefix, at, instance = stem.partition("@")
    return Context(prefix if at else stem, suffix, template=bool(at) and not instance,
                   instance=instance, passwd={"nobody": (65534, 65534, "/nonexistent",
                                                         "/usr/sbin/nologin")},
                   groups={65534: "nogroup"})


@FUZZ
@given(text=systemd_file, dropin=systemd_file,
       name=st.sampled_from(["t.service", "t@.service", "t@x-y.service", "n.target"]))
def test_a_systemd_unit_translates_and_builds_or_names_where(text, dropin, name):
    files = [("/lib/systemd/system/" + name, text), ("/etc/x.conf", dropin)]
    try:
        t = systemd.translate(name, files, context(name))
    except (systemd.TranslateError, syntax.SyntaxProblem) as e:
        assert e.path in (f[0] for f in files)
        return
    for path, line, note in t.notes:
        assert isinstance(note, str) and (not path or path in (f[0] for f in files)) \
            and line >= 0
    stem = name.rpartition(".")[0]
    try:
        unit = build(t.name, files[0][0], t.raw, t.positions, stem.partition("@")[2],
                     "systemd", tuple(t.notes))
    except UnitError as e:
        assert e.reason
        return
    assert Unit.from_json(t.name, unit.to_json()) == unit


@FUZZ
@given(data=st.binary(max_size=200))
def test_decode_takes_any_bytes(data):
    try:
        text = syntax.decode(data, "/x.service")
    except syntax.SyntaxProblem as e:
        assert e.path == "/x.service"
    else:
        assert isinstance(text, str)


# --- init.d scripts and inittab ---------------------------------------------------------
lsb_line = st.one_of(
    st.sampled_from(["### BEGIN INIT INFO", "### END INIT INFO", "#!/bin/sh", "",
                     'case "$1" in', "start) do_start ;;", "esac", "PIDFILE=/run/x.pid",
                     "DAEMON=/usr/sbin/x", 'NAME=x', "pidfile=$PIDFILE"]),
    st.builds(lambda k, v: f"# {k}: {v}", st.sampled_from(
        ["Provides", "Required-Start", "Required-Stop", "Should-Start", "Default-Start",
         "Default-Stop", "X-Start-Before", "Short-Description", "Description",
         "X-Interactive"]), st.lists(words, max_size=4).map(" ".join)),
    st.text(max_size=30))


@FUZZ
@given(lines=st.lists(lsb_line, max_size=25))
def test_an_init_d_script_translates_or_has_no_header(lines):
    text = "\n".join(lines)
    facts = initd.Facts(lambda n: n if n in ("syslog", "networking") else None,
                        lambda n: "skipped" if n == "udev" else None)
    try:
        t = initd.translate("x", "/etc/init.d/x", text, "/etc/init.d/x", facts)
    except initd.NoHeader:
        return
    try:
        build(t.name, "/etc/init.d/x", t.raw, t.positions, "", "init.d", tuple(t.notes))
    except UnitError as e:
        assert e.reason


inittab_line = st.one_of(
    st.builds(lambda i, lv, a, p: f"{i}:{lv}:{a}:{p}", st.text(max_size=4),
              st.sampled_from(["", "2345", "S", "0", "6", "12x"]),
              st.sampled_from(["respawn", "once", "wait", "initdefault", "sysinit", "boot",
                               "ctrlaltdel", "powerfail", "off", "ondemand", "bogus", ""]),
              st.lists(words, max_size=4).map(" ".join)),
    st.text(max_size=30))


@FUZZ
@given(lines=st.lists(inittab_line, max_size=20))
def test_inittab_parses_and_each_unit_builds(lines):
    text = "\n".join(lines)
    tab = inittab.parse(text, "/etc/inittab")
    for path, line, _why in tab.problems + tab.handled:
        assert path == "/etc/inittab" and 0 < line <= len(text.splitlines())
    for u in tab.units:
        try:
            build(u.name, "/etc/inittab", u.raw, {}, "", "inittab", tuple(u.notes))
        except UnitError as e:
            assert e.reason


# --- boot: fstab, the kernel command line, modules ----------------------------------------
fstab_line = st.one_of(
    st.builds(lambda *f: " ".join(f), st.sampled_from(
        ["/dev/vda1", "UUID=1234-ABCD", "UUID=", 'LABEL="x"', "tmpfs", "proc", "PARTUUID=a",
         "\\040", "server:/export", "none", ""]),
        st.sampled_from(["/", "/srv/a\\040b", "none", "relative", "/x/../y", ""]),
        st.sampled_from(["ext4", "swap", "tmpfs", "nfs", "auto", ""]),
        st.lists(st.sampled_from(["defaults", "ro", "rw", "noauto", "nofail", "_netdev",
                                  "x-systemd.device-timeout=5", "x-systemd.device-timeout=x",
                                  "bind", "size=10%", "mode=1777", "remount", ""] + ["é"]),
                 max_size=5).map(",".join),
        st.sampled_from(["0", "1", "x", ""]), st.sampled_from(["0", "2", "-1", "", "a b"])),
    st.text(max_size=40))


@FUZZ
@given(lines=st.lists(fstab_line, max_size=20))
def test_fstab_each_line_is_an_entry_or_a_problem_naming_it(lines):
    tab = fstab.parse("\n".join(lines), "/etc/fstab")
    numbers = range(1, len("\n".join(lines).splitlines()) + 1)
    for problem in tab.problems:
        where = problem.split(":", 2)
        assert where[0] == "/etc/fstab" and int(where[1]) in numbers
    for e in tab.mounts + tab.swaps:
        assert e.line in numbers and e.spec
        assert e.is_swap or e.target.startswith("/")


@FUZZ
@given(text=st.text(max_size=200) | lines_of(st.sampled_from(
    ['console=ttyS0,115200n8', 'console=tty1', 'vigil.x="a b"', '"', "--", "single",
     "root=/dev/vda", "modules-load=a,b", "=", "quiet", "init=/sbin/vigil"]), sep=" "))
def test_the_kernel_command_line_never_fails(text):
    c = cmdline.Cmdline(text)
    for key, values in c.values.items():
        assert c.get(key) == values[-1] and c.has(key)
    for tty, baud in c.consoles():
        assert tty and baud.isdigit() or baud == ""


modprobe_word = st.sampled_from(["options", "blacklist", "alias", "install", "softdep",
                                 "remove", "include", "pre:", "post:", "bogus", "snd-hda",
                                 "snd_hda", "pci:v*d*", "[", "*", "?", "\\", "#", "a=b"])


@FUZZ
@given(text=lines_of(modprobe_word), dep=lines_of(st.sampled_from(
    ["kernel/a.ko:", "kernel/b.ko.xz: kernel/a.ko", ":", "alias", "x.ko.zst", "::"])))
def test_modprobe_d_and_the_kernels_tables_parse(text, dep):
    config = modules.parse_modprobe_conf(text, "/etc/modprobe.d/x.conf")
    for problem in config.problems:
        assert problem.startswith("/etc/modprobe.d/x.conf:")
    table = modules.parse_dep(dep)
    aliases = modules.parse_alias(text)
    modules.parse_builtin(dep)
    modules.parse_module_list(text)
    db = modules.ModuleDB(table, aliases, modules.parse_builtin(dep), config)
    for request in ("a", "b", "snd-hda", "pci:v00d01", "[", ""):
        steps, problems = modules.resolve(db, request)
        assert all(isinstance(p, str) for p in problems)
        assert len({s.name for s in steps}) == len(steps), "each module once"
