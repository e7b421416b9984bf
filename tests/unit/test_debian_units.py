"""Debian bookworm's own unit files and init.d scripts, imported as a user switching from
sysvinit would see them (fetched with apt-get download; see conftest.py)."""

import tomllib

import pytest
from machine import ETC, SYSTEM, Machine

from vigil.command import Command
from vigil.translate import convert
from vigil.unit import Catalog, build

PACKAGES = {
    "openssh-server": ["lib/systemd/system/ssh.service", "lib/systemd/system/ssh.socket",
                       "etc/init.d/ssh"],
    "cron": ["lib/systemd/system/cron.service", "etc/init.d/cron"],
    "rsyslog": ["lib/systemd/system/rsyslog.service"],
    "systemd": ["lib/systemd/system/getty@.service", "lib/systemd/system/multi-user.target",
                "lib/systemd/system/network.target", "lib/systemd/system/time-sync.target"],
    "systemd-timesyncd": ["lib/systemd/system/systemd-timesyncd.service"],
    "chrony": ["lib/systemd/system/chrony.service", "etc/init.d/chrony"],
    "nginx-common": ["lib/systemd/system/nginx.service", "etc/init.d/nginx"],
    "postgresql-common": ["lib/systemd/system/postgresql@.service",
                          "lib/systemd/system/postgresql.service", "etc/init.d/postgresql"],
    "ifupdown": ["lib/systemd/system/networking.service", "etc/init.d/networking"],
    "bootlogd": ["etc/init.d/bootlogd"],          # a package with only init.d scripts
    "initscripts": ["etc/init.d/rc.local", "etc/init.d/mountall.sh", "etc/init.d/bootmisc.sh"],
}


@pytest.fixture(scope="module")
def machine(tmp_path_factory, debian):
    """A sysvinit machine with these packages: what Debian's maintainer scripts leave
    (wants links, alias links, rc links) and an inittab."""
    m = Machine(tmp_path_factory.mktemp("debian"))
    for package, paths in PACKAGES.items():
        root = debian(package)
        for path in paths:
            m.copy(root, path)
    m.copy(debian("sysvinit-core"), "usr/share/sysvinit/inittab", "etc/inittab")
    for name in ("ssh.service", "cron.service", "rsyslog.service", "chrony.service",
                 "nginx.service", "networking.service", "postgresql.service"):
        m.want("multi-user.target", name)
    m.link(f"{ETC}/syslog.service", f"/{SYSTEM}/rsyslog.service")
    m.link(f"{ETC}/sshd.service", f"/{SYSTEM}/ssh.service")
    m.link(f"{ETC}/multi-user.target.wants/postgresql@15-main.service",
           f"/{SYSTEM}/postgresql@.service")
    for name in ("bootlogd", "rc.local", "ssh", "cron"):
        m.rc("2", name)
    m.rc("S", "mountall.sh")
    m.file("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
           "_chrony:x:101:102::/var/lib/chrony:/usr/sbin/nologin\n")
    return m


@pytest.fixture(scope="module")
def catalog(machine):
    return machine.catalog()


def test_nothing_fails_and_the_enabled_services_are_there(catalog):
    assert not catalog.errors, catalog.errors
    enabled = {n for n, u in catalog.units.items() if u.enabled}
    assert {"ssh", "cron", "rsyslog", "chrony", "nginx", "networking", "postgresql",
            "postgresql@15-main", "bootlogd", "rc.local"} <= enabled
    assert catalog.units["ssh"].origin == "systemd"       # the unit wins over init.d/ssh
    assert catalog.units["bootlogd"].origin == "init.d"
    assert "getty@" in catalog.skipped and "mountall.sh" in catalog.skipped
    assert catalog.shadowed["ssh"][0].endswith("lib/systemd/system/ssh.service")
    assert catalog.shadowed["ssh"][-1].endswith("etc/init.d/ssh")


def test_ssh_service(catalog):
    ssh = catalog.units["ssh"]
    assert ssh.type == "notify" and ssh.restart == "on-failure"
    assert ssh.exec == Command(("/usr/sbin/sshd", "-D", "$SSHD_OPTS"))
    assert ssh.exec_start_pre == (Command(("/usr/sbin/sshd", "-t")),)
    assert ssh.exec_reload == (Command(("/usr/sbin/sshd", "-t")),
                               Command(("/bin/kill", "-HUP", "$MAINPID")))
    assert ssh.expand_environment and ssh.kill_mode == "process"
    assert ssh.restart_prevent_exit_status == (255,)
    assert ssh.runtime_directory == ("sshd",) and ssh.runtime_directory_mode == 0o755
    assert ssh.environment_file == (("/etc/default/ssh", True),)
    assert ssh.condition_path_exists == (("/etc/ssh/sshd_not_to_be_run", True, False),)
    assert ssh.after == ("network.target", "auditd") and ssh.aliases == ("sshd",)
    assert catalog.get("sshd") is ssh and catalog.resolve("sshd") == "ssh"
    assert any(p.endswith("ssh.socket") for p in catalog.ignored)


def test_rsyslog_its_socket_and_its_alias(catalog):
    r = catalog.units["rsyslog"]
    assert r.log == "null" and r.limits == (("nofile", 16384, 16384),)
    assert r.aliases == ("syslog",) and catalog.resolve("syslog") == "rsyslog"
    notes = [t for _p, _l, t in r.notes]
    assert any("syslog.socket dropped" in t and "must open its own socket" in t for t in notes)


def test_timesyncd_sandboxing_is_noted_not_dropped(catalog):
    t = catalog.units["systemd-timesyncd"]
    assert t.user == "systemd-timesync" and t.watchdog == 180 and t.type == "notify"
    assert t.exec == Command(("/lib/systemd/systemd-timesyncd",))   # !! applies the user
    assert t.restart == "always" and t.restart_delay == 0
    notes = {text.split("=", 1)[0]: (line, text) for _p, line, text in t.notes}
    for key in ("ProtectSystem", "PrivateTmp", "SystemCallFilter", "CapabilityBoundingSet",
                "ConditionCapability", "BusName"):
        assert key in notes and notes[key][0] > 0, key
    assert "sandboxing" in notes["ProtectSystem"][1]
    assert any(text.startswith("Before=") and "sysinit.target dropped" in text
               for _p, _l, text in t.notes)


def test_chrony_forking_with_pidfile_and_privileged_start(catalog):
    c = catalog.units["chrony"]
    assert c.type == "forking" and c.pidfile == "/run/chrony/chronyd.pid"
    assert c.exec.privileged and c.exec.argv == ("/usr/sbin/chronyd", "$DAEMON_OPTS")
    assert c.user == "_chrony" and c.runtime_directory_mode == 0o700
    assert c.state_directory_mode == 0o750 and c.logs_directory == ("chrony",)
    assert "time-sync.target" in c.before and "time-sync.target" not in c.wants


def test_nginx(catalog):
    n = catalog.units["nginx"]
    assert n.type == "forking" and n.pidfile == "/run/nginx.pid"
    assert n.stop_timeout == 5 and n.kill_mode == "mixed"
    assert n.exec_stop[0].ignore_failure
    assert n.exec.argv == ("/usr/sbin/nginx", "-g", "daemon on; master_process on;")


def test_postgresql_template_and_enabled_instance(catalog):
    assert "postgresql@" in catalog.templates
    pg = catalog.units["postgresql@15-main"]
    assert pg.enabled and pg.instance == "15-main"
    assert pg.pidfile == "/run/postgresql/15-main.pid"
    assert pg.assert_path_exists == (("/etc/postgresql/15/main/postgresql.conf", False, False),)
    assert pg.requires_mounts == ("/etc/postgresql/15/main", "/var/lib/postgresql/15/main")
    assert pg.start_timeout == 0 and pg.stop_timeout == 3600
    assert pg.part_of == ("postgresql",) and pg.exec.ignore_failure
    other = catalog.get("postgresql@13-other")
    assert not other.enabled and other.pidfile == "/run/postgresql/13-other.pid"


def test_networking_oneshot_with_two_starts(catalog):
    n = catalog.units["networking"]
    assert n.type == "oneshot" and n.remain_after_exit
    assert n.exec_start_pre == (Command(("/sbin/ifup", "-a", "--read-environment")),)
    assert n.exec.ignore_failure and n.exec.argv[:2] == ("/bin/sh", "-c")
    assert n.start_timeout == 300 and n.exec_stop_post[0].argv[0] == "/usr/bin/touch"
    assert "network.target" in n.before and "network.target" not in n.wants
    # ...but its Wants=network.target still starts that target at boot, after networking:
    # else nothing starts it, and sshd (After=network.target) would not wait for ifup
    assert catalog.units["network.target"].enabled
    assert "network.target" in catalog.units["ssh"].after


def test_initd_scripts(catalog, machine):
    b = catalog.units["bootlogd"]
    assert b.type == "oneshot" and b.remain_after_exit and b.enabled
    assert b.exec.argv == (machine.path("etc/init.d/bootlogd"), "start")
    assert b.exec_stop[0].argv[-1] == "stop"
    # vigil runs the script itself: vigil's LSB hook must not hand it back to vigilctl
    assert dict(b.environment) == {"VIGIL_SKIP_REDIRECT": "1"}
    rc_local = catalog.units["rc.local"]
    assert "bootlogd" in rc_local.after  # $all: after the other enabled init.d scripts


def test_inittab_gettys(catalog):
    assert catalog.gettys == {f"inittab-{i}": f"tty{i}" for i in range(1, 7)}
    g = catalog.units["inittab-2"]
    assert g.exec.argv == ("/sbin/getty", "38400", "tty2") and g.enabled
    assert (g.restart, g.start_limit_burst, g.start_limit_interval) == ("always", 10, 120)
    assert any("initdefault" in text for _p, _l, text in catalog.handled)


def test_every_file_round_trips_through_convert(catalog, machine, tmp_path):
    """convert's TOML loads to a Unit equal to the one imported from the source."""
    checked = 0
    for name, unit in sorted(catalog.units.items()):
        if name not in catalog.sources:
            continue
        raw = convert.resolved(catalog, catalog.sources[name])
        text = convert.toml_text(name, raw, unit.notes, unit.path)
        (tmp_path / f"{name}.toml").write_text(text)
        again = Catalog([str(tmp_path)]).units.get(name)
        assert again == unit, name
        checked += 1
    for name, t in catalog.templates.items():
        text = convert.toml_text(name, convert.resolved(catalog, t["raw"]), (), t["path"])
        assert build(name, "x", tomllib.loads(text), text, "inst") == build(
            name, t["path"], t["raw"], t["source"], "inst"), name
    assert checked >= 15
