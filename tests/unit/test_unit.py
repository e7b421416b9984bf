"""Unit files: valid and hostile input, templates, directory overrides."""

import signal

import pytest

from vigil.unit import Catalog


def write(d, name, text):
    (d / f"{name}.toml").write_text(text)


def catalog(*dirs):
    return Catalog([str(d) for d in dirs])


def test_defaults_and_values(tmp_path):
    write(tmp_path, "web", """
[unit]
description = "Web"
requires = ["db"]
[service]
exec = "/usr/bin/web --port 8080 'a b'"
stop_signal = "INT"
umask = "027"
environment = { LANG = "C.UTF-8" }
""")
    write(tmp_path, "db", '[service]\nexec = ["/usr/bin/db"]\n')
    c = catalog(tmp_path)
    assert not c.errors
    web = c.units["web"]
    assert web.exec.argv == ("/usr/bin/web", "--port", "8080", "a b")
    assert web.type == "simple" and web.restart == "always" and web.enabled
    assert web.stop_signal == signal.SIGINT and web.umask == 0o027
    assert web.environment == (("LANG", "C.UTF-8"),)
    assert web.log == "file" and web.log_max_size == 1 << 20 and web.log_keep == 5
    assert web.ordered_after() == {"db"}


def test_oneshot_defaults_to_no_restart(tmp_path):
    write(tmp_path, "o", '[service]\ntype = "oneshot"\nexec = "true"\n')
    assert catalog(tmp_path).units["o"].restart == "never"


@pytest.mark.parametrize("text, key, line, reason", [
    ('[service]\nexec = "x"\nrestrat = "always"\n', "service.restrat", 3,
     "unknown key (did you mean 'restart'?)"),
    ('[service]\nexec = "x"\nrestart = "sometimes"\n', "service.restart", 3, "expected one of"),
    ('[service]\nexec = "x"\nstop_timeout = "ten"\n', "service.stop_timeout", 3, "a number"),
    ('[service]\nexec = "x"\nstart_limit_burst = 1.5\n', "service.start_limit_burst", 3,
     "an integer"),
    ('[service]\nexec = []\n', "service.exec", 2, "empty command"),
    ('[service]\nexec = "x"\nstop_signal = "SIGFOO"\n', "service.stop_signal", 3,
     "unknown signal"),
    ('[unit]\nenabled = "yes"\n[service]\nexec = "x"\n', "unit.enabled", 2, "true or false"),
    ('[unit]\nexec = "x"\n', "unit.exec", 2, "belongs in [service]"),
    ('[service]\ntype = "simple"\n', "service.exec", 0, "missing"),
    ('[service]\nexec = "x"\ntype = "forking"\n', "service.pidfile", 0, "pidfile"),
    ('[service]\nexec = "x"\nworking_dir = "relative"\n', "service.working_dir", 3,
     "absolute path"),
    ('[service]\nexec = "x"\numask = "999"\n', "service.umask", 3, "octal"),
    ('[service]\nexec = "x"\nenvironment = { A = 1 }\n', "service.environment", 3,
     "string"),
    ('[unit]\nafter = ["bad name"]\n[service]\nexec = "x"\n', "unit.after", 2,
     "not a valid unit name"),
])
def test_bad_values_name_file_line_key(tmp_path, text, key, line, reason):
    write(tmp_path, "bad", text)
    write(tmp_path, "good", '[service]\nexec = "x"\n')
    c = catalog(tmp_path)
    assert "good" in c.units, "one bad unit never stops the others"
    err = c.errors["bad"]
    assert err.path == str(tmp_path / "bad.toml")
    assert err.key == key and err.line == line
    assert reason in str(err)


def test_toml_syntax_error_has_line(tmp_path):
    write(tmp_path, "bad", '[service]\nexec = "x"\nrestart = always\n')
    err = catalog(tmp_path).errors["bad"]
    assert err.line == 3 and "TOML syntax" in str(err)


def test_unknown_section(tmp_path):
    write(tmp_path, "bad", '[service]\nexec = "x"\n[Install]\nWantedBy = "x"\n')
    err = catalog(tmp_path).errors["bad"]
    assert err.line == 3 and "unknown section [Install]" in str(err)


def test_requires_missing_or_invalid_unit(tmp_path):
    write(tmp_path, "a", '[unit]\nrequires = ["ghost"]\n[service]\nexec = "x"\n')
    write(tmp_path, "b", '[unit]\nrequires = ["a"]\n[service]\nexec = "x"\n')
    write(tmp_path, "c", '[unit]\nwants = ["ghost"]\n[service]\nexec = "x"\n')
    c = catalog(tmp_path)
    assert "does not exist" in str(c.errors["a"]) and c.errors["a"].line == 2
    assert "'a' is invalid" in str(c.errors["b"])
    assert "c" in c.units  # wants on a missing unit is fine


def test_template_and_instances(tmp_path):
    write(tmp_path, "getty@", """
[unit]
description = "getty on %i"
[service]
exec = ["/sbin/agetty", "%i", "115200"]
tty = "/dev/%i"
""")
    write(tmp_path, "getty@tty2", '[service]\nexec = ["/sbin/agetty", "--noclear", "%i"]\n')
    c = catalog(tmp_path)
    assert "getty@" not in c.units and "getty@" in c.templates
    tty2 = c.units["getty@tty2"]
    assert tty2.exec.argv == ("/sbin/agetty", "--noclear", "tty2")  # instance key wins
    assert tty2.tty == "/dev/tty2" and tty2.description == "getty on tty2"  # merged
    s0 = c.get("getty@ttyS0")  # made on demand, no file of its own
    assert s0.exec.argv == ("/sbin/agetty", "ttyS0", "115200") and s0.instance == "ttyS0"
    assert c.get("nothing@x") is None


def test_instance_error_names_the_instance_file(tmp_path):
    write(tmp_path, "t@", '[service]\nexec = "x %i"\n')
    write(tmp_path, "t@1", '[service]\nstop_timeout = -1\n')
    err = catalog(tmp_path).errors["t@1"]
    assert err.path == str(tmp_path / "t@1.toml") and err.line == 2


def test_later_directory_overrides_by_name(tmp_path):
    stock, local = tmp_path / "usr", tmp_path / "etc"
    stock.mkdir()
    local.mkdir()
    write(stock, "a", '[service]\nexec = "stock"\n')
    write(stock, "b", '[service]\nexec = "stock-b"\n')
    write(local, "a", '[service]\nexec = "local"\n')
    c = catalog(stock, local, tmp_path / "missing")
    assert c.units["a"].exec.argv == ("local",) and c.units["b"].exec.argv == ("stock-b",)


def test_unit_equality_is_by_settings(tmp_path):
    write(tmp_path, "a", '[service]\nexec = "x"\n')
    one, two = catalog(tmp_path).units["a"], catalog(tmp_path).units["a"]
    assert one == two
    write(tmp_path, "a", '[service]\nexec = "x"\nstop_timeout = 3\n')
    assert catalog(tmp_path).units["a"] != one


def test_hostile_files(tmp_path):
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "we ird.toml").write_text('[service]\nexec = "x"\n')
    write(tmp_path, "arr", '[[service]]\nexec = "x"\n')
    write(tmp_path, "ok", '[service]\nexec = "x"\n')
    c = catalog(tmp_path)
    assert set(c.errors) == {"bin", "we ird", "arr"} and set(c.units) == {"ok"}


def test_parsing_child_gives_the_same_catalog(tmp_path):
    from vigil.unit import read_in_child
    write(tmp_path, "a", '[unit]\nafter = ["b"]\n[service]\nexec = "x y"\n'
          'environment = { A = "1" }\nstop_signal = "HUP"\n')
    write(tmp_path, "bad", '[service]\nexec = "x"\nnope = 1\n')
    write(tmp_path, "t@", '[service]\nexec = "run %i"\n')
    direct, child = catalog(tmp_path), read_in_child([str(tmp_path)])
    assert direct.units == child.units and set(child.units) == {"a"}
    assert str(child.errors["bad"]) == str(direct.errors["bad"])
    assert child.get("t@9").exec.argv == ("run", "9")
