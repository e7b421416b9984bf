"""systemd unit files as vigil reads them: syntax, every directive carried over, specifiers,
and what is noted when something is not."""

import resource

import pytest

from vigil.command import Command
from vigil.translate import syntax, systemd
from vigil.translate.specifiers import Context, resolve
from vigil.unit import build


def translate(text, name="t.service", dropins=(), **ctx):
    stem, _, suffix = name.rpartition(".")
    prefix, at, instance = stem.partition("@")
    context = Context(prefix if at else stem, suffix, template=bool(at) and not instance,
                      instance=instance, **ctx)
    files = [("/lib/systemd/system/" + name, text), *dropins]
    return systemd.translate(name, files, context)


def unit(text, name="t.service", **kw):
    t = translate(text, name, **kw)
    stem = name.rpartition(".")[0]
    return build(t.name, "/x/" + name, t.raw, t.positions, stem.partition("@")[2],
                 "systemd", tuple(t.notes)), t


def notes(t):
    return [text for _p, _l, text in t.notes]


# --- syntax -----------------------------------------------------------------------------
def test_comments_continuations_and_sections():
    u, t = unit("# comment\n; also\n[Unit]\nDescription=a \\\n  long \\\n# inside\n  one\n"
                "[Service]\nExecStart=/bin/x \\\n  --flag\n")
    assert u.description == "a    long    one" and u.exec.argv == ("/bin/x", "--flag")


def test_a_line_without_equals_or_section_is_noted_with_its_line():
    t = translate("Description=early\n[Unit]\nnonsense\n[Service]\nExecStart=/bin/x\n")
    assert ("/lib/systemd/system/t.service", 1,
            "Description=: outside of any section, ignored") in t.notes
    assert any(line == 3 and "not an assignment" in text for _p, line, text in t.notes)


@pytest.mark.parametrize("value, words", [
    ('/bin/x "a b" \'c d\'', ["/bin/x", "a b", "c d"]),
    ('/bin/x a"b c"d', ["/bin/x", "ab cd"]),             # quotes open anywhere in a word
    (r'/bin/x "\x41\t" \s', ["/bin/x", "A\t", " "]),      # C escapes, which shlex lacks
    (r"/bin/x 'a\nb'", ["/bin/x", "a\nb"]),               # ... inside single quotes too
    ('/bin/x ""', ["/bin/x", ""]),
    (r"/bin/x \; y", ["/bin/x", ";", "y"]),
])
def test_systemd_word_splitting(value, words):
    assert syntax.command_lines(value)[0].words == words


def test_a_trailing_backslash_in_a_word_is_an_error():
    with pytest.raises(ValueError, match="trailing backslash"):
        syntax.split("/bin/x \\")


def test_a_lone_semicolon_separates_commands():
    lines = syntax.command_lines("/bin/a 1 ; -/bin/b 2")
    assert [c.words for c in lines] == [["/bin/a", "1"], ["/bin/b", "2"]]
    assert lines[1].ignore_failure


@pytest.mark.parametrize("value, reason", [
    ('/bin/x "open', "unbalanced quoting"),
    (r"/bin/x \q", "invalid escape"),
    ("-", "no program"),
    ("--/bin/x", "not allowed"),
    ("+!/bin/x", "not allowed"),
    ("@/bin/x", "needs a second word"),
])
def test_bad_command_lines_are_noted_and_ignored(value, reason):
    t = translate(f"[Service]\nType=oneshot\nExecStartPre={value}\n")
    assert "exec_start_pre" not in t.raw["service"]
    assert any(line == 3 and reason in text for _p, line, text in t.notes), t.notes


@pytest.mark.parametrize("value, seconds", [
    ("90", 90), ("5min 20s", 320), ("1h30m", 5400), ("500ms", 0.5), ("2.5s", 2.5),
    ("1d", 86400), ("1w", 604800), ("100us", 0.0001), ("infinity", syntax.INFINITY),
])
def test_time_spans(value, seconds):
    assert syntax.timespan(value) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5 parsecs", "1..2s", "s", "-1s"])
def test_bad_time_spans(bad):
    with pytest.raises(ValueError):
        syntax.timespan(bad)


def test_sizes_and_booleans():
    assert syntax.size("64M") == 64 << 20 and syntax.size("4096") == 4096
    assert syntax.size("1G") == 1 << 30 and syntax.size("512K") == 512 << 10
    assert syntax.boolean("Yes") and not syntax.boolean("off")
    with pytest.raises(ValueError):
        syntax.boolean("maybe")


@pytest.mark.parametrize("data, line, reason", [
    (b"\x7fELF\x00\x01\x02", 1, "NUL byte"),
    (b"[Unit]\nDescription=\xff\xfe\n", 2, "not UTF-8"),
    (b"[Unit]\nDescription=" + b"x" * (syntax.LINE_MAX + 1), 2, "longer than"),
    (b"[Unit]\nA=\\\n" + b"x\\\n" * (syntax.LINE_MAX // 2), 2, "longer than"),
    (b"[Unit\nDescription=x\n", 1, "invalid section header"),
])
def test_hostile_files_are_syntax_problems_naming_file_and_line(data, line, reason):
    with pytest.raises(syntax.SyntaxProblem) as e:
        syntax.parse(syntax.decode(data, "/f.service"), "/f.service")
    assert reason in str(e.value)
    assert (e.value.path, e.value.line) == ("/f.service", line)
    assert str(e.value).startswith(f"/f.service:{line}: ")


def test_a_file_ending_in_a_continuation_keeps_its_last_line():
    u, _t = unit("[Service]\nExecStart=/bin/x \\")
    assert u.exec.argv == ("/bin/x",)


# --- directives -------------------------------------------------------------------------
FULL = """[Unit]
Description=Everything
Documentation=man:x(8) https://x.org
Requires=a.service
BindsTo=b.service
Requisite=c.service
Wants=d.service
PartOf=e.service
After=f.service network.target
Before=g.service
Conflicts=h.service
ConditionPathExists=|!/etc/x
ConditionPathIsDirectory=/srv
ConditionFileNotEmpty=/etc/x.conf
ConditionFileIsExecutable=/etc/rc.local
AssertPathExists=/usr/bin/x
RequiresMountsFor=/srv /var/lib/x
StartLimitIntervalSec=30
StartLimitBurst=3

[Service]
Type=forking
PIDFile=x.pid
RemainAfterExit=yes
ExecStartPre=-/bin/pre
ExecStart=@/usr/bin/x x-daemon --foreground
ExecStartPost=:/bin/post $X
ExecReload=/bin/kill -HUP $MAINPID
ExecStop=+/bin/stop
ExecStopPost=!/bin/cleanup
Restart=on-abort
RestartSec=5
TimeoutStartSec=1min
TimeoutStopSec=20s
KillMode=mixed
KillSignal=SIGINT
SendSIGKILL=no
SuccessExitStatus=1 2 SIGHUP
RestartPreventExitStatus=SIGKILL 255
User=www
Group=www
SupplementaryGroups=adm ssl-cert
WorkingDirectory=-~
RootDirectory=/srv/root
Environment=A=1 "B=two words" C=%%
Environment=D=${A}
EnvironmentFile=-/etc/default/x
EnvironmentFile=/etc/x.env
UMask=0027
Nice=-5
LimitNOFILE=1024:4096
LimitCORE=infinity
LimitMEMLOCK=64M
LimitCPU=1min
LimitNICE=-10
LimitRTTIME=1s
RuntimeDirectory=x x/sub
RuntimeDirectoryMode=0750
StateDirectory=x
StateDirectoryMode=0700
LogsDirectory=x
LogsDirectoryMode=0750
CacheDirectory=x
CacheDirectoryMode=0700
StandardOutput=append:/var/log/x.log
StandardError=inherit
NotifyAccess=all
WatchdogSec=30

[Install]
WantedBy=multi-user.target
RequiredBy=other.target
Alias=xd.service
"""


def test_every_directive_carried_over():
    u, t = unit(FULL, "x.service")
    assert u.description == "Everything" and u.documentation == ("man:x(8)", "https://x.org")
    assert u.requires == ("a", "b") and u.requisite == ("c",) and u.wants == ("d",)
    assert u.part_of == ("e",) and u.after == ("f", "network.target")
    assert u.before == ("g",) and u.conflicts == ("h",)
    assert u.condition_path_exists == (("/etc/x", True, True),)
    assert u.condition_path_is_directory == (("/srv", False, False),)
    assert u.condition_file_not_empty == (("/etc/x.conf", False, False),)
    assert u.condition_file_is_executable == (("/etc/rc.local", False, False),)
    assert u.assert_path_exists == (("/usr/bin/x", False, False),)
    assert u.requires_mounts == ("/srv", "/var/lib/x")
    assert u.start_limit_interval == 30 and u.start_limit_burst == 3
    assert u.type == "forking" and u.pidfile == "/run/x.pid" and u.remain_after_exit
    assert u.exec_start_pre == (Command(("/bin/pre",), ignore_failure=True),)
    assert u.exec == Command(("/usr/bin/x", "--foreground"), argv0="x-daemon")
    assert u.exec_start_post == (Command(("/bin/post", "$X"), expand=False),)
    assert u.exec_reload == (Command(("/bin/kill", "-HUP", "$MAINPID")),)
    assert u.exec_stop == (Command(("/bin/stop",), privileged=True),)
    assert u.exec_stop_post == (Command(("/bin/cleanup",), privileged=True),)
    assert u.expand_environment
    assert u.restart == "on-abort" and u.restart_delay == 5 == u.restart_delay_max
    assert u.start_timeout == 60 and u.stop_timeout == 20
    assert u.kill_mode == "mixed" and u.stop_signal == 2 and not u.send_sigkill
    assert u.success_exit_status == (1, 2, "SIGHUP")
    assert u.restart_prevent_exit_status == ("SIGKILL", 255)
    assert (u.user, u.group, u.supplementary_groups) == ("www", "www", ("adm", "ssl-cert"))
    assert u.working_dir == "-~" and u.root_directory == "/srv/root"
    assert dict(u.environment) == {"A": "1", "B": "two words", "C": "%", "D": "${A}"}
    assert u.environment_file == (("/etc/default/x", True), ("/etc/x.env", False))
    assert u.umask == 0o027 and u.nice == -5
    assert dict((n, (s, h)) for n, s, h in u.limits) == {
        "nofile": (1024, 4096), "core": (resource.RLIM_INFINITY,) * 2,
        "memlock": (64 << 20,) * 2, "cpu": (60, 60), "nice": (30, 30),
        "rttime": (1_000_000,) * 2}
    assert u.runtime_directory == ("x", "x/sub") and u.runtime_directory_mode == 0o750
    assert u.state_directory_mode == 0o700 and u.logs_directory_mode == 0o750
    assert u.cache_directory == ("x",) and u.cache_directory_mode == 0o700
    assert u.log == "append:/var/log/x.log"
    assert u.notify_access == "all" and u.watchdog == 30
    assert u.aliases == ("xd",)
    assert t.install == {"WantedBy": ["multi-user.target"], "RequiredBy": ["other.target"]}
    assert not [n for n in notes(t) if "not carried over" in n or "ignored" in n], notes(t)


@pytest.mark.parametrize("type_, expect", [
    ("simple", "simple"), ("exec", "simple"), ("idle", "simple"), ("notify", "notify"),
    ("dbus", "simple"), ("notify-reload", "notify"),
])
def test_types(type_, expect):
    u, t = unit(f"[Service]\nType={type_}\nExecStart=/bin/x\n")
    assert u.type == expect and u.restart == "never"   # systemd's Restart=no
    if type_ in ("dbus", "notify-reload"):
        assert any(n.startswith(f"Type={type_}:") for n in notes(t))


@pytest.mark.parametrize("value, expect", [
    ("no", "never"), ("always", "always"), ("on-success", "on-success"),
    ("on-failure", "on-failure"), ("on-abnormal", "on-abnormal"), ("on-abort", "on-abort"),
    ("on-watchdog", "on-watchdog")])
def test_restart_values(value, expect):
    assert unit(f"[Service]\nExecStart=/bin/x\nRestart={value}\n")[0].restart == expect


@pytest.mark.parametrize("value, expect, note", [
    ("journal", "file", ""), ("syslog", "file", ""), ("kmsg", "file", ""),
    ("inherit", "file", ""), ("journal+console", "file", "console is not made"),
    ("null", "null", ""), ("tty", "console", ""),
    ("file:/var/log/x", "append:/var/log/x", "writes it from the start"),
    ("append:/var/log/x", "append:/var/log/x", ""),
    ("truncate:/var/log/x", "append:/var/log/x", "empties it first"),
    ("socket", "file", "not carried over")])
def test_standard_output(value, expect, note):
    u, t = unit(f"[Service]\nExecStart=/bin/x\nStandardOutput={value}\n")
    assert u.log == expect
    assert any(note in n for n in notes(t)) if note else not notes(t)


def test_standard_error_apart_from_output_is_noted():
    _u, t = unit("[Service]\nExecStart=/bin/x\nStandardOutput=null\nStandardError=journal\n")
    assert any(n.startswith("StandardError=journal: not carried over") for n in notes(t))


def test_timeouts_infinity_and_timeoutsec():
    u, t = unit("[Service]\nExecStart=/bin/x\nTimeoutSec=infinity\n")
    assert u.start_timeout == 0 and u.stop_timeout == 86400
    assert any("no stop limit" in n for n in notes(t))
    u, _ = unit("[Service]\nExecStart=/bin/x\nTimeoutSec=7\n")
    assert u.start_timeout == u.stop_timeout == 7


def test_several_execstart_of_a_oneshot_become_pre_commands():
    u, _ = unit("[Service]\nType=oneshot\nExecStartPre=/bin/0\nExecStart=/bin/1\n"
                "ExecStart=/bin/2\nExecStart=/bin/3\n")
    assert [c.argv[0] for c in u.exec_start_pre] == ["/bin/0", "/bin/1", "/bin/2"]
    assert u.exec.argv == ("/bin/3",)


def test_errors_systemd_would_refuse_too():
    with pytest.raises(systemd.TranslateError) as e:
        translate("[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n")
    assert e.value.line == 3 and "more than one ExecStart=" in str(e.value)
    with pytest.raises(systemd.TranslateError) as e:
        translate("[Unit]\nDescription=x\n")
    assert "needs an ExecStart=" in str(e.value)


def test_forking_without_pidfile_becomes_a_oneshot_that_stays():
    u, t = unit("[Service]\nType=forking\nExecStart=/etc/rc.local start\n")
    assert u.type == "oneshot" and u.remain_after_exit
    assert any("without PIDFile=" in n for n in notes(t))


def test_a_target_is_a_group():
    u, t = unit("[Unit]\nDescription=Net\nAfter=a.service\n[Service]\nExecStart=/bin/x\n",
                "net.target")
    assert u.type == "group" and u.exec is None and u.after == ("a",)
    assert any("[Service]: this section is not carried over" in n for n in notes(t))


def test_dependencies_on_out_of_scope_and_skipped_units():
    u, t = unit("[Unit]\nRequires=x.socket\nAfter=x.timer sysinit.target "
                "systemd-udevd.service getty@tty1.service noext\n"
                "[Service]\nExecStart=/bin/x\n")
    assert u.requires == () and u.after == ("udevd", "getty@tty1")
    n = notes(t)
    assert any("x.socket dropped" in x and "must open its own socket" in x for x in n)
    assert any("x.timer dropped: .timer units are out of scope" in x for x in n)
    assert any("sysinit.target dropped (vigil's stage 1" in x for x in n)
    assert any("systemd-udevd.service is vigil's udevd" in x for x in n)
    assert any("noext: not a unit name" in x for x in n)


def test_wants_on_a_unit_it_is_before_is_not_pulled_in():
    u, t = unit("[Unit]\nWants=n.target o.service\nBefore=n.target\n"
                "[Service]\nExecStart=/bin/x\n")
    assert u.wants == ("o",) and u.before == ("n.target",)
    assert any("n.target is also Before=" in x for x in notes(t))
    assert any("wants: o: vigil also starts this unit after it" in x for x in notes(t))


def test_invalid_values_are_noted_and_ignored_as_systemd_does():
    u, t = unit("[Service]\nExecStart=/bin/x\nNice=99\nUMask=999\nKillMode=some\n"
                "Environment=1X=2 ok=yes\nLimitNOFILE=lots\nWorkingDirectory=relative\n"
                "Restart=sometimes\nRestartSec=soon\n[Unit]\nConditionPathExists=relative\n")
    assert u.nice is None and u.umask == 0o022 and u.kill_mode == "control-group"
    assert dict(u.environment) == {"ok": "yes"} and u.limits == () and u.working_dir is None
    ignored = [line for _p, line, text in t.notes if "ignored" in text]
    assert ignored == [3, 4, 5, 6, 7, 8, 9, 10, 12] and u.condition_path_exists == ()


def test_not_carried_over_and_no_effect_notes():
    _u, t = unit("[Unit]\nDefaultDependencies=no\nOnFailure=x.service\n"
                 "[Service]\nExecStart=/bin/x\nProtectSystem=full\nPrivateTmp=no\n"
                 "MemoryMax=1G\nSyslogIdentifier=x\nIgnoreSIGPIPE=yes\nDynamicUser=yes\n"
                 "X-Custom=1\nFrobnicate=2\n[Socket]\nListenStream=22\n")
    by_key = {n.split("=", 1)[0]: n for n in notes(t)}
    assert "no effect under vigil: it adds no implicit" in by_key["DefaultDependencies"]
    assert by_key["OnFailure"].endswith("not carried over")
    assert "sandboxing" in by_key["ProtectSystem"]
    assert "no effect under vigil (what it does anyway)" in by_key["PrivateTmp"]
    assert "cgroups" in by_key["MemoryMax"] and "journal" in by_key["SyslogIdentifier"]
    assert "SIGPIPE at its default" in by_key["IgnoreSIGPIPE"]
    assert "runs as User=" in by_key["DynamicUser"]
    assert "X- settings" in by_key["X-Custom"] and by_key["Frobnicate"].endswith("over")
    assert any(n.startswith("[Socket]: this section is not carried over") for n in notes(t))


# --- drop-ins ---------------------------------------------------------------------------
def test_dropins_override_append_and_reset():
    base = ("[Unit]\nAfter=a.service\n[Service]\nExecStart=/bin/old\nExecStartPre=/bin/p1\n"
            "Environment=A=1 B=2\nRestart=always\n")
    d1 = ("/etc/systemd/system/t.service.d/10-x.conf",
          "[Service]\nExecStart=\nExecStart=/bin/new\nExecStartPre=/bin/p2\nRestart=no\n")
    d2 = ("/etc/systemd/system/t.service.d/20-y.conf",
          "[Unit]\nAfter=b.service\n[Service]\nEnvironment=\nEnvironment=C=3\n")
    t = translate(base, dropins=[d1, d2])
    u = build("t", "/x", t.raw, t.positions)
    assert u.exec.argv == ("/bin/new",) and u.restart == "never"
    assert [c.argv[0] for c in u.exec_start_pre] == ["/bin/p1", "/bin/p2"]
    assert dict(u.environment) == {"C": "3"} and u.after == ("a", "b")
    assert t.positions["service.exec"] == (d1[0], 3)


def test_an_error_in_a_dropin_names_the_dropin():
    with pytest.raises(systemd.TranslateError) as e:
        translate("[Service]\nExecStart=/bin/a\n",
                  dropins=[("/etc/d/x.conf", "[Service]\nExecStart=/bin/b\n")])
    assert e.value.path == "/etc/d/x.conf" and e.value.line == 2


# --- specifiers -------------------------------------------------------------------------
PASSWD = {"www": (33, 33, "/var/www", "/usr/sbin/nologin")}


@pytest.mark.parametrize("spec, value", [
    ("%n", "foo@a-b.service"), ("%N", "foo@a-b"), ("%p", "foo"), ("%P", "foo"),
    ("%i", "a-b"), ("%I", "a/b"), ("%f", "/a/b"), ("%j", "foo"), ("%t", "/run"),
    ("%S", "/var/lib"), ("%C", "/var/cache"), ("%L", "/var/log"), ("%E", "/etc"),
    ("%T", "/tmp"), ("%V", "/var/tmp"), ("%u", "www"), ("%h", "/var/www"), ("%U", "33"),
    ("%G", "33"), ("%s", "/usr/sbin/nologin"), ("%H", "box"), ("%%", "%"),
])
def test_every_specifier(spec, value):
    ctx = Context("foo", "service", instance="a-b", user="www", passwd=PASSWD, hostname="box")
    got, problems = resolve(spec, ctx)
    assert got == value
    if spec[1] in "hsuUgG":   # said, since systemd would give root's
        assert problems == [f"{spec}: resolved from User=www; systemd itself gives root's "
                            "here (it ignores User= for specifiers)"]
    else:
        assert problems == []


def test_template_specifiers_stay_for_the_instance():
    t = translate("[Unit]\nDescription=%n %N %i %I %p %%i\n[Service]\nExecStart=/bin/x %i\n",
                  "foo@.service")
    assert t.raw["unit"]["description"] == "foo@%i.service foo@%i %i %I foo %%i"
    u = build("foo@a-b", "/x", t.raw, t.positions, "a-b")
    assert u.description == "foo@a-b.service foo@a-b a-b a/b foo %i"
    assert u.exec.argv == ("/bin/x", "a-b")


def test_a_literal_percent_survives_vigils_specifiers():
    u, _ = unit("[Service]\nExecStart=/bin/date +%%s 100%%i\n")
    assert u.exec.argv == ("/bin/date", "+%s", "100%i")


def test_root_user_and_unknown_specifiers():
    got, problems = resolve("%h %u %Z", Context("x", "service"))
    assert got == "/root root %Z" and problems == ["%Z: not known here: left as it is"]
    got, problems = resolve("%h", Context("x", "service", user="ghost"))
    assert got == "%h" and "not in the passwd file" in problems[0]


def test_user_comes_from_user_wherever_it_is():
    u, _ = unit("[Service]\nExecStart=/bin/x %h\nUser=www\n", passwd=PASSWD)
    assert u.exec.argv == ("/bin/x", "/var/www")


def test_a_mount_named_in_a_dependency_is_waited_for_through_requires_mounts():
    u, t = unit("[Unit]\nAfter=srv-data.mount network.target\nRequires=var-www.mount\n"
                "[Service]\nExecStart=/bin/x\n")
    assert u.requires_mounts == ("/srv/data", "/var/www")
    assert u.after == ("network.target",) and u.requires == ()
    assert not any(".mount" in n for n in notes(t)), "nothing is lost"
