"""The keys the systemd/init.d translation needs: values, defaults, errors, JSON transport."""

import resource

import pytest

from vigil.command import Command
from vigil.unit import SCHEMA, Catalog, Unit, read_in_child


def load(tmp_path, text, name="u"):
    (tmp_path / f"{name}.toml").write_text(text)
    c = Catalog([str(tmp_path)])
    return c.units.get(name), c.errors.get(name)


FULL = """
[unit]
documentation = ["man:web(8)", "https://example.org"]
requisite = ["db"]
part_of = ["stack"]
conflicts = ["other"]
aliases = ["www", "httpd"]
condition_path_exists = ["/etc/web", "!/etc/web/disabled", "|/a", "|!/b"]
condition_path_is_directory = ["!|/srv"]
condition_file_not_empty = ["/etc/web.conf"]
assert_path_exists = ["/usr/bin/web"]
requires_mounts = ["/srv", "/var/lib/web"]

[service]
type = "oneshot"
exec = "-@/usr/bin/web web-master --flag"
exec_start_pre = ["/usr/bin/web -t", ["+/usr/bin/prep", "a b"]]
exec_start_post = ":/bin/echo $X"
exec_reload = [["/bin/kill", "-HUP", "$MAINPID"]]
exec_stop = []
exec_stop_post = ["!/bin/cleanup"]
remain_after_exit = true
expand_environment = true
environment_file = ["-/etc/default/web", "/etc/web.env"]
runtime_directory = ["web", "web/sub"]
runtime_directory_mode = "0750"
state_directory = ["web"]
logs_directory = ["web"]
cache_directory = ["web"]
cache_directory_mode = 0o700
kill_mode = "mixed"
send_sigkill = false
success_exit_status = [1, "TERM", "SIGHUP"]
restart_prevent_exit_status = [255]
restart = "on-abnormal"
supplementary_groups = ["adm", "ssl-cert"]
nice = -5
limits = { nofile = [1024, 4096], core = "infinity", nproc = 100 }
root_directory = "/srv/chroot"
watchdog = 30
notify_access = "all"
log = "append:/var/log/web.log"
working_dir = "-~"
"""


def test_every_new_key_is_read_into_typed_values(tmp_path):
    u, err = load(tmp_path, FULL)
    assert err is None, err
    assert u.documentation == ("man:web(8)", "https://example.org")
    assert (u.requisite, u.part_of, u.conflicts) == (("db",), ("stack",), ("other",))
    assert u.aliases == ("www", "httpd")
    assert u.condition_path_exists == (("/etc/web", False, False),
                                       ("/etc/web/disabled", True, False),
                                       ("/a", False, True), ("/b", True, True))
    assert u.condition_path_is_directory == (("/srv", True, True),)
    assert u.condition_file_not_empty == (("/etc/web.conf", False, False),)
    assert u.assert_path_exists == (("/usr/bin/web", False, False),)
    assert u.requires_mounts == ("/srv", "/var/lib/web")
    assert u.exec == Command(("/usr/bin/web", "--flag"), ignore_failure=True,
                             argv0="web-master")
    assert u.exec_start_pre == (Command(("/usr/bin/web", "-t")),
                                Command(("/usr/bin/prep", "a b"), privileged=True))
    assert u.exec_start_post == (Command(("/bin/echo", "$X"), expand=False),)
    assert u.exec_reload == (Command(("/bin/kill", "-HUP", "$MAINPID")),)
    assert u.exec_stop == () and u.exec_stop_post == (Command(("/bin/cleanup",),
                                                              privileged=True),)
    assert u.remain_after_exit and u.expand_environment
    assert u.environment_file == (("/etc/default/web", True), ("/etc/web.env", False))
    assert u.runtime_directory == ("web", "web/sub") and u.runtime_directory_mode == 0o750
    assert u.state_directory_mode == 0o755 and u.cache_directory_mode == 0o700
    assert (u.kill_mode, u.send_sigkill) == ("mixed", False)
    assert u.success_exit_status == (1, "SIGTERM", "SIGHUP")
    assert u.restart_prevent_exit_status == (255,) and u.restart == "on-abnormal"
    assert u.supplementary_groups == ("adm", "ssl-cert") and u.nice == -5
    assert u.limits == (("core", resource.RLIM_INFINITY, resource.RLIM_INFINITY),
                        ("nofile", 1024, 4096), ("nproc", 100, 100))
    assert u.root_directory == "/srv/chroot" and u.watchdog == 30
    assert u.notify_access == "all" and u.log == "append:/var/log/web.log"
    assert u.working_dir == "-~"
    assert (u.origin, u.notes, u.masked) == ("toml", (), False)


def test_defaults_of_the_new_keys(tmp_path):
    u, _ = load(tmp_path, '[service]\nexec = "/bin/x"\n')
    assert u.exec_start_pre == u.exec_stop == u.limits == u.aliases == ()
    assert not u.remain_after_exit and not u.expand_environment
    assert u.kill_mode == "control-group" and u.send_sigkill and u.notify_access == "main"
    assert u.watchdog == 0 and u.nice is None and u.root_directory is None
    assert u.runtime_directory_mode == 0o755
    assert u.exec == Command(("/bin/x",)) and u.exec.expand and not u.exec.privileged


def test_oneshot_and_group_need_no_exec(tmp_path):
    u, err = load(tmp_path, '[service]\ntype = "oneshot"\n')
    assert err is None and u.exec is None and u.restart == "never"
    g, err = load(tmp_path, '[unit]\nafter = ["u"]\n[service]\ntype = "group"\n', "g")
    assert err is None and g.type == "group" and g.restart == "never"


@pytest.mark.parametrize("text, key, reason", [
    ('[service]\ntype = "group"\nexec = "/bin/x"\n', "service.exec", "a group runs no process"),
    ('[service]\ntype = "notify"\n', "service.exec", "only a oneshot or a group"),
    ('[service]\nexec = "--/bin/x"\n', "service.exec", "prefix '-' given twice"),
    ('[service]\nexec = "+!/bin/x"\n', "service.exec", "+ and ! mean the same"),
    ('[service]\nexec = "@/bin/x"\n', "service.exec", "needs a second word"),
    ('[service]\nexec = "-:"\n', "service.exec", "no program after the prefixes"),
    ('[service]\nexec = "/bin/x \'open"\n', "service.exec", "cannot split"),
    ('[service]\nexec = "/bin/x"\nexec_stop = ["/bin/a", 3]\n', "service.exec_stop",
     "command 2: expected a list of strings"),
    ('[service]\nexec = "/bin/x"\nexec_reload = 5\n', "service.exec_reload",
     "expected a list of commands"),
    ('[unit]\ncondition_path_exists = ["relative"]\n[service]\nexec = "x"\n',
     "unit.condition_path_exists", "'relative': expected an absolute path"),
    ('[unit]\ncondition_path_exists = ["!!/x"]\n[service]\nexec = "x"\n',
     "unit.condition_path_exists", "prefix '!' given twice"),
    ('[unit]\nrequires_mounts = "/srv"\n[service]\nexec = "x"\n', "unit.requires_mounts",
     "expected a list of absolute paths"),
    ('[unit]\ndocumentation = [1]\n[service]\nexec = "x"\n', "unit.documentation",
     "expected a string"),
    ('[unit]\naliases = ["bad name"]\n[service]\nexec = "x"\n', "unit.aliases",
     "not a valid unit name"),
    ('[service]\nexec = "x"\nruntime_directory = ["/run/x"]\n', "service.runtime_directory",
     "relative directory name"),
    ('[service]\nexec = "x"\nstate_directory = ["a/../b"]\n', "service.state_directory",
     "relative directory name"),
    ('[service]\nexec = "x"\nlogs_directory_mode = "0999"\n', "service.logs_directory_mode",
     "octal"),
    ('[service]\nexec = "x"\nkill_mode = "all"\n', "service.kill_mode", "expected one of"),
    ('[service]\nexec = "x"\nsuccess_exit_status = [256]\n', "service.success_exit_status",
     "between 0 and 255"),
    ('[service]\nexec = "x"\nrestart_prevent_exit_status = ["SIGNOPE"]\n',
     "service.restart_prevent_exit_status", "unknown signal"),
    ('[service]\nexec = "x"\nnice = 20\n', "service.nice", "from -20 to 19"),
    ('[service]\nexec = "x"\nlimits = { files = 3 }\n', "service.limits", "unknown rlimit"),
    ('[service]\nexec = "x"\nlimits = { nofile = [10, 5] }\n', "service.limits",
     "soft limit is above the hard"),
    ('[service]\nexec = "x"\nlimits = { nofile = -1 }\n', "service.limits", "non-negative"),
    ('[service]\nexec = "x"\nlimits = { nofile = [1, 2, 3] }\n', "service.limits",
     "[soft, hard]"),
    ('[service]\nexec = "x"\nwatchdog = -1\n', "service.watchdog", "at least 0"),
    ('[service]\nexec = "x"\nnotify_access = "some"\n', "service.notify_access",
     "expected one of"),
    ('[service]\nexec = "x"\nlog = "append:relative"\n', "service.log", "absolute path"),
    ('[service]\nexec = "x"\nlog = "journal"\n', "service.log", "append:/path"),
    ('[service]\nexec = "x"\nworking_dir = "~user"\n', "service.working_dir", "absolute"),
    ('[service]\nexec = "x"\nenvironment_file = ["-rel"]\n', "service.environment_file",
     "absolute path"),
    ('[service]\nexec = "x"\nroot_directory = "srv"\n', "service.root_directory",
     "absolute path"),
    ('[service]\nexec = "x"\nsupplementary_groups = "adm"\n', "service.supplementary_groups",
     "list of strings"),
    ('[service]\nexec = "x"\nremain_after_exit = 1\n', "service.remain_after_exit",
     "true or false"),
])
def test_bad_values_of_new_keys(tmp_path, text, key, reason):
    _, err = load(tmp_path, text)
    assert err is not None and err.key == key, err
    assert reason in str(err)
    if key != "service.exec" or "only a oneshot" not in reason:
        assert err.line > 0 and str(err).startswith(f"{tmp_path / 'u.toml'}:{err.line}: ")


def test_template_specifiers_and_percent_escape(tmp_path):
    (tmp_path / "pg@.toml").write_text(
        '[service]\nexec = ["/bin/run", "%i", "%I", "%n", "%p", "100%%", "%s"]\n')
    c = Catalog([str(tmp_path)])
    u = c.get("pg@15-main")
    assert u.exec.argv == ("/bin/run", "15-main", "15/main", "pg@15-main", "pg", "100%", "%s")


def test_new_values_survive_the_parsing_child_and_count_in_equality(tmp_path):
    (tmp_path / "u.toml").write_text(FULL)
    direct, child = Catalog([str(tmp_path)]), read_in_child([str(tmp_path)])
    assert child.units["u"] == direct.units["u"]
    for key in SCHEMA:
        assert getattr(child.units["u"], key) == getattr(direct.units["u"], key), key
    changed = FULL.replace('"-@/usr/bin/web', '"@/usr/bin/web')
    (tmp_path / "u.toml").write_text(changed)
    assert Catalog([str(tmp_path)]).units["u"] != direct.units["u"]
    again = Unit.from_json("u", direct.units["u"].to_json())
    again.masked = True
    assert again != direct.units["u"]


def test_units_that_name_a_path_on_a_pending_mount_wait_for_its_unit(tmp_path):
    from vigil.unit import Catalog
    (tmp_path / "srv-data.mount.toml").write_text(
        '[service]\ntype = "oneshot"\nremain_after_exit = true\nexec = "/bin/true"\n')
    (tmp_path / "srv-data-cache.mount.toml").write_text(
        '[service]\ntype = "oneshot"\nremain_after_exit = true\nexec = "/bin/true"\n')
    (tmp_path / "web.toml").write_text(
        '[unit]\nrequires_mounts = ["/srv/data/www"]\n[service]\nexec = "/bin/web"\n')
    (tmp_path / "app.toml").write_text('[service]\nexec = "/srv/data/bin/app"\n')
    (tmp_path / "getty.toml").write_text('[service]\nexec = "/sbin/agetty tty1"\n')
    (tmp_path / "near.toml").write_text('[service]\nexec = "/srv/database/run"\n')
    c = Catalog([str(tmp_path)])
    assert not c.errors
    for name in ("web", "app"):
        assert "srv-data.mount" in c.units[name].requires
        assert "srv-data.mount" in c.units[name].after
    assert c.units["getty"].requires == () and c.units["near"].requires == ()
    assert c.units["srv-data-cache.mount"].requires == ("srv-data.mount",), \
        "a mount under another waits for it"
