"""Where units come from under an import root: precedence, drop-ins, enabled, masks,
aliases, shadowing, skip lists, init.d and inittab, hostile trees."""

import pytest
from machine import ETC, SYSTEM, Machine

from vigil.unit import Catalog, read_in_child

SIMPLE = "[Service]\nExecStart=/bin/{0}\n"
SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name} {name}-alias
# Required-Start:    {req}
# Should-Start:      {should}
# X-Start-Before:    {before}
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: the {name} daemon
# Description:       a long text
#                    on two lines
### END INIT INFO
PIDFILE=/run/{name}.pid
case "$1" in
  start) start-stop-daemon --start --pidfile $PIDFILE --exec /bin/true ;;
  stop) ;;
  reload|force-reload) kill -HUP $(cat $PIDFILE) ;;
esac
"""


@pytest.fixture
def m(tmp_path):
    return Machine(tmp_path / "root")


def script(name, req="", should="", before=""):
    return SCRIPT.format(name=name, req=req, should=should, before=before)


def test_etc_over_run_over_lib_and_dropins_by_file_name(m):
    m.unit("a.service", SIMPLE.format("lib") + "Environment=X=lib\n")
    m.unit("a.service", SIMPLE.format("run"), "run/systemd/system")
    m.unit("b.service", SIMPLE.format("b"), "usr/lib/systemd/system")
    m.file(f"{SYSTEM}/a.service.d/10-env.conf", "[Service]\nEnvironment=Y=lib\n")
    m.file(f"{ETC}/a.service.d/10-env.conf", "[Service]\nEnvironment=Y=etc\n")
    m.file(f"{SYSTEM}/a.service.d/20-more.conf", "[Service]\nExecStart=\nExecStart=/bin/d\n")
    m.file(f"{ETC}/a.service.d/05-first.conf", "[Service]\nEnvironment=Y=first\n")
    m.link("run/systemd/system/a.service.d/20-more.conf", "/dev/null")   # removes it
    c = m.catalog()
    a = c.units["a"]
    assert a.exec.argv == ("/bin/run",) and dict(a.environment) == {"Y": "etc"}
    assert c.shadowed["a"] == [m.path("run/systemd/system/a.service"),
                               m.path(f"{SYSTEM}/a.service")]
    assert c.units["b"].exec.argv == ("/bin/b",)


def test_enabled_through_wants_links_transitively_through_targets(m):
    for n in ("a", "b", "c", "off"):
        m.unit(f"{n}.service", SIMPLE.format(n))
    m.unit("extra.target", "[Unit]\nDescription=extra\n")
    m.want("multi-user.target", "a.service")
    m.want("multi-user.target", "extra.target")
    m.want("extra.target", "b.service")
    m.want("graphical.target", "c.service", "requires")
    c = m.catalog()
    assert {n for n, u in c.units.items() if u.enabled} == {"a", "b", "c", "extra.target"}
    assert c.units["off"].enabled is False and "b" in c.units["extra.target"].wants
    assert c.units["extra.target"].type == "group"


def test_default_target_alias_links_enable_too(m):
    m.unit("a.service", SIMPLE.format("a"))
    m.unit("custom.target", "[Unit]\n")
    m.link(f"{ETC}/default.target", f"/{SYSTEM}/custom.target")
    m.want("custom.target", "a.service")
    assert m.catalog().units["a"].enabled


def test_rc_links_of_the_default_run_level_and_rcS(m):
    for name in ("two", "three", "early", "late"):
        m.script(name, script(name))
    m.file("etc/inittab", "id:3:initdefault:\n")
    m.rc("2", "two")
    m.rc("3", "three")
    m.rc("S", "early")
    m.rc("3", "late")
    m.link("etc/rc3.d/K01two", "../init.d/two")
    c = m.catalog()
    assert c.runlevel == "3"
    assert {n for n, u in c.units.items() if u.enabled} == {"three", "early", "late"}
    assert "early" in c.units["three"].after and "early" in c.units["late"].after


def test_without_inittab_the_run_level_is_2(m):
    m.script("two", script("two"))
    m.rc("2", "two")
    assert m.catalog().units["two"].enabled


RC_LOCAL_UNIT = ("[Unit]\nConditionFileIsExecutable=/etc/rc.local\n[Service]\n"
                 "Type=forking\nExecStart=/etc/rc.local start\nRemainAfterExit=yes\n")


@pytest.mark.parametrize("mode, initd, enabled", [
    (0o755, False, True),    # systemd's rc-local generator would pull it in
    (0o644, False, False),   # not executable: not run
    (0o755, True, False),    # initscripts' rc.local script runs the file instead
])
def test_an_executable_rc_local_enables_rc_local_service(m, mode, initd, enabled):
    m.unit("rc-local.service", RC_LOCAL_UNIT)
    m.file("etc/rc.local", "#!/bin/sh\ntouch /run/ran\n", mode)
    if initd:
        m.script("rc.local", script("rc.local"))
        m.rc("2", "rc.local")
    c = m.catalog()
    assert c.units["rc-local"].enabled is enabled
    if initd:
        assert c.units["rc.local"].enabled and c.units["rc.local"].origin == "init.d"


def test_without_rc_local_nothing_is_pulled_in(m):
    m.unit("rc-local.service", RC_LOCAL_UNIT)
    assert m.catalog().units["rc-local"].enabled is False


def test_masks_in_etc_and_run_but_not_in_lib(m):
    m.unit("a.service", SIMPLE.format("a"))
    m.link(f"{ETC}/a.service", "/dev/null")
    m.script("b", script("b"))
    m.link("run/systemd/system/b.service", "/dev/null")
    m.rc("2", "b")
    m.script("x11-common", script("x11-common"))
    m.link(f"{SYSTEM}/x11-common.service", "/dev/null")   # Debian's, for systemd only
    m.rc("2", "x11-common")
    m.link(f"{ETC}/ghost.service", "/dev/null")
    (m.root / "etc/vigil").mkdir(parents=True)
    (m.root / "etc/vigil/a.toml").write_text('[service]\nexec = "/bin/mine"\n')
    c = m.catalog()
    assert c.units["a"].masked and not c.units["a"].enabled
    assert c.units["b"].masked and c.units["b"].origin == "init.d" and not c.units["b"].enabled
    assert not c.units["x11-common"].masked and c.units["x11-common"].enabled
    assert set(c.masks) == {"a", "b", "ghost"}
    own = m.catalog(m.root / "etc/vigil")
    assert not own.units["a"].masked and own.units["a"].origin == "toml"  # TOML not masked


def test_aliases_from_alias_and_links_resolve_dependencies(m):
    m.unit("rsyslog.service", SIMPLE.format("rsyslog") + "[Install]\nAlias=syslog.service\n")
    m.unit("ssh.service", SIMPLE.format("ssh"))
    m.link(f"{ETC}/sshd.service", f"/{SYSTEM}/ssh.service")
    m.unit("app.service", "[Unit]\nRequires=sshd.service\nAfter=syslog.service\n"
           + SIMPLE.format("app"))
    c = m.catalog()
    assert c.aliases == {"sshd": "ssh", "syslog": "rsyslog"}
    assert c.units["app"].requires == ("ssh",) and c.units["app"].after == ("rsyslog",)
    assert c.get("sshd") is c.units["ssh"] and not c.errors


def test_a_loop_of_alias_links_and_dangling_links_are_errors_naming_the_file(m):
    m.link(f"{ETC}/a.service", "b.service")
    m.link(f"{ETC}/b.service", "a.service")
    m.link(f"{ETC}/gone.service", "/lib/systemd/system/nothing.service")
    (m.root / SYSTEM / "dir.service").mkdir(parents=True)
    m.unit("ok.service", SIMPLE.format("ok"))
    c = m.catalog()
    assert "loop of symbolic links" in str(c.errors["a"]) and str(c.errors["a"]).startswith(
        m.path(f"{ETC}/a.service"))
    assert "dangling symbolic link" in str(c.errors["gone"])
    assert "a directory, not a unit file" in str(c.errors["dir"])
    assert "ok" in c.units


@pytest.mark.parametrize("data, line, reason", [
    (b"\x00\x01binary\xff", 1, "NUL byte"),
    (b"[Unit]\nDescription=\xc3\x28\n", 2, "not UTF-8"),
    (b"[Service]\nExecStart=" + b"y" * (1 << 21), 2, "longer than"),
    (b"[Service]\nExecStart=/bin/x 'open\n", 0, "needs an ExecStart="),
    (b"[Service\nExecStart=/bin/x\n", 1, "invalid section header"),
])
def test_hostile_unit_files_give_errors_and_spare_the_others(m, data, line, reason):
    m.file(f"{SYSTEM}/bad.service", data)
    m.unit("ok.service", SIMPLE.format("ok"))
    c = m.catalog()
    err = c.errors["bad"]
    assert reason in str(err) and err.path == m.path(f"{SYSTEM}/bad.service")
    assert err.line == line and "ok" in c.units


def test_unterminated_quote_is_noted_with_its_line(m):
    m.unit("q.service", "[Service]\nType=oneshot\nExecStart=/bin/x 'open\n"
           "ExecStart=/bin/y\n")
    c = m.catalog()
    q = c.units["q"]
    assert q.exec.argv == ("/bin/y",)
    assert (m.path(f"{SYSTEM}/q.service"), 3) in [(p, n) for p, n, t in q.notes
                                                   if "unbalanced quoting" in t]


def test_shadowing_order_toml_then_systemd_then_initd(m, tmp_path):
    own = tmp_path / "units"
    own.mkdir()
    (own / "web.toml").write_text('[service]\nexec = "/bin/mine"\n')
    m.unit("web.service", SIMPLE.format("web"))
    m.script("web", script("web"))
    m.unit("db.service", SIMPLE.format("db"))
    m.script("db", script("db"))
    m.script("cache", script("cache"))
    c = m.catalog(own)
    assert c.units["web"].origin == "toml" and c.units["db"].origin == "systemd"
    assert c.units["cache"].origin == "init.d"
    assert c.shadowed["web"] == [str(own / "web.toml"), m.path(f"{SYSTEM}/web.service"),
                                 m.path("etc/init.d/web")]
    assert c.shadowed["db"] == [m.path(f"{SYSTEM}/db.service"), m.path("etc/init.d/db")]


def test_skip_lists(m):
    m.unit("systemd-journald.service", SIMPLE.format("journald"))
    m.unit("getty@.service", SIMPLE.format("agetty %I"))
    m.unit("sysinit.target", "[Unit]\n")
    m.script("mountall.sh", script("mountall"))
    m.script("hostname.sh", script("hostname"))
    m.script("udev", script("udev"))
    m.script("networking", script("networking", req="mountkernfs $local_fs"))
    m.script("mountkernfs.sh", script("mountkernfs"))
    m.want("multi-user.target", "getty@tty1.service")
    c = m.catalog()
    assert {"systemd-journald", "getty@", "getty@tty1", "sysinit.target", "mountall.sh",
            "hostname.sh", "udev", "mountkernfs.sh"} <= set(c.skipped)
    assert "networking" in c.units     # a real service, not skipped
    assert any("mountkernfs dropped" in t for _p, _l, t in c.units["networking"].notes)
    assert "captures services' output" in c.skipped["systemd-journald"][1]


def test_initd_header_facilities_pidfile_and_reload(m):
    m.unit("networking.service", SIMPLE.format("ifup"))
    m.unit("rsyslog.service", SIMPLE.format("rsyslog") + "[Install]\nAlias=syslog.service\n")
    m.script("rpcbind", script("rpcbind"))
    m.script("app", script("app", req="$network $syslog $portmap $time $local_fs nothere",
                           should="$named $remote_fs", before="other"))
    m.script("other", script("other"))
    c = m.catalog()
    app = c.units["app"]
    assert app.type == "forking" and app.pidfile == "/run/app.pid"
    assert app.exec.argv == (m.path("etc/init.d/app"), "start")
    assert app.exec_reload[0].argv[-1] == "reload" and app.exec_stop[0].argv[-1] == "stop"
    assert set(app.requires) == {"rsyslog", "rpcbind"}
    assert {"networking", "nss-lookup.target", "remote-fs", "remote-fs.target"} <= set(
        app.wants)
    assert {"network.target", "time-sync.target", "nothere"} <= set(app.after)
    assert app.before == ("other",) and app.aliases == ("app-alias",)
    assert app.description == "the app daemon"
    assert c.units["network.target"].type == "group"   # made: no file on this machine
    notes = [t for _p, _l, t in app.notes]
    assert any("nothere does not exist on this machine" in t for t in notes)
    assert any(t.startswith("Default-Stop: no effect") for t in notes)


def test_all_facility_starts_after_the_other_enabled_scripts(m):
    for name in ("a", "b"):
        m.script(name, script(name))
        m.rc("2", name)
    m.script("last", script("last", req="$all"))
    m.rc("2", "last")
    c = m.catalog()
    assert {"a", "b"} <= set(c.units["last"].after)
    assert "last" not in c.units["a"].after


def test_scripts_without_header_are_listed_not_started(m):
    m.script("old", "#!/bin/sh\necho hi\n")
    m.script("open", "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: open\n")
    m.script("README", "not a script")
    m.script("x.dpkg-old", script("x"))
    c = m.catalog()
    listed = {p.rsplit("/", 1)[1]: why for p, why in c.no_header}
    assert set(listed) == {"old", "open"} and "END INIT INFO" in listed["open"]
    assert "old" not in c.units and "x.dpkg-old" not in c.units


def test_inittab_lines(m):
    m.file("etc/inittab", """id:3:initdefault:
si::sysinit:/etc/init.d/rcS
l3:3:wait:/etc/init.d/rc 3
ca:12345:ctrlaltdel:/sbin/shutdown -t1 -a -r now
w1:3:wait:/usr/local/bin/prepare
rs:2345:respawn:+/usr/local/bin/watch --x > /var/log/w
on:3:once:/usr/local/bin/hello
t2:2:respawn:/sbin/getty 38400 tty2
z6:6:respawn:/sbin/sulogin
bad line
xx:3:frobnicate:/bin/true
""")
    c = m.catalog()
    assert c.runlevel == "3"
    w1, rs, on = c.units["inittab-w1"], c.units["inittab-rs"], c.units["inittab-on"]
    assert w1.type == "oneshot" and w1.enabled
    assert rs.exec.argv == ("/bin/sh", "-c", "exec /usr/local/bin/watch --x > /var/log/w")
    assert (rs.restart, rs.start_limit_burst, rs.start_limit_interval,
            rs.start_limit_cooldown) == ("always", 10, 120, 300)
    assert rs.after == ("inittab-w1",) and on.after == ("inittab-w1",)
    assert on.type == "oneshot" and on.exec.argv == ("/usr/local/bin/hello",)
    assert not c.units["inittab-t2"].enabled and c.gettys == {"inittab-t2": "tty2"}
    handled = [t for _p, _l, t in c.handled]
    assert len(handled) == 5 and any(t.startswith("z6:6:respawn: only for") for t in handled)
    errors = sorted(str(e) for n, e in c.errors.items() if n.startswith("/etc/inittab"))
    assert errors[0].startswith(m.path("etc/inittab") + ":10: ")
    assert "unknown action 'frobnicate'" in errors[1]


def test_no_import_without_a_root_and_the_child_gives_the_same(m, tmp_path):
    m.unit("a.service", SIMPLE.format("a") + "[Install]\nAlias=aa.service\n")
    m.unit("t@.service", "[Service]\nExecStart=/bin/t %i %I\n")
    m.want("multi-user.target", "a.service")
    own = tmp_path / "own"
    own.mkdir()
    assert Catalog([str(own)]).units == {}
    direct = m.catalog(own)
    child = read_in_child([str(own)], str(m.root))
    assert child.units == direct.units and child.aliases == direct.aliases
    assert child.units["a"].origin == "systemd" and child.units["a"].notes == direct.units[
        "a"].notes
    assert child.get("aa") is child.units["a"]
    assert child.get("t@x-y").exec.argv == ("/bin/t", "x-y", "x/y")
    assert child.skipped == direct.skipped and child.masks == direct.masks
