"""vigilctl check and convert on an import root, as a user reads them."""

import tomllib

import pytest
from machine import ETC, SYSTEM, Machine

from vigil import ctl
from vigil.unit import Catalog


@pytest.fixture
def m(tmp_path):
    m = Machine(tmp_path / "root")
    m.unit("web.service", "[Unit]\nAfter=syslog.service\n[Service]\nExecStart=/bin/true\n"
           "ProtectSystem=full\nUser=www\n[Install]\nWantedBy=multi-user.target\n")
    m.unit("rsyslog.service", "[Service]\nExecStart=/bin/true\n"
           "[Install]\nAlias=syslog.service\n")
    m.want("multi-user.target", "web.service")
    m.want("multi-user.target", "rsyslog.service")
    m.unit("masked.service", "[Service]\nExecStart=/bin/true\n")
    m.link(f"{ETC}/masked.service", "/dev/null")
    m.unit("systemd-journald.service", "[Service]\nExecStart=/bin/true\n")
    m.script("old", "#!/bin/sh\n")
    m.file("etc/inittab", "id:2:initdefault:\n")
    return m


def run(capsys, *args):
    code = ctl.run(list(args))
    out = capsys.readouterr().out
    return code, out


def test_check_reports_notes_shadowed_skipped_masked(m, capsys, tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "rsyslog.toml").write_text('[service]\nexec = "/bin/true"\n')
    code, out = run(capsys, "check", str(own), "--import-root", str(m.root))
    assert code == 0, out
    web = m.path(f"{SYSTEM}/web.service")
    assert f"note: {web}:5: ProtectSystem=full: not carried over: sandboxing" in out
    assert f"shadowed: rsyslog: used {own / 'rsyslog.toml'}, shadowed " \
           f"{m.path(f'{SYSTEM}/rsyslog.service')}" in out
    assert f"skipped: systemd-journald ({m.path(f'{SYSTEM}/systemd-journald.service')}): " \
           "vigil captures" in out
    assert f"masked: masked ({m.path(f'{ETC}/masked.service')} -> /dev/null)" in out
    assert f"not started: {m.path('etc/init.d/old')}: no LSB header" in out
    assert "handled by vigil: " + m.path("etc/inittab") + ":1: id:2:initdefault" in out
    assert out.rstrip().endswith("0 errors")


def test_check_exits_non_zero_only_on_errors(m, capsys):
    m.file(f"{SYSTEM}/broken.service", b"\x00garbage")
    code, out = run(capsys, "check", "--import-root", str(m.root), str(m.root / "none"))
    assert code == 1 and f"error: {m.path(f'{SYSTEM}/broken.service')}:1: a NUL byte" in out


def test_check_without_import_root_reads_only_the_given_dirs(m, capsys, tmp_path):
    own = tmp_path / "own2"
    own.mkdir()
    code, out = run(capsys, "check", str(own))
    assert code == 0 and "0 units" in out and "note:" not in out


def test_convert_one_file_prints_toml_with_notes(m, capsys):
    code, out = run(capsys, "convert", m.path(f"{SYSTEM}/web.service"), "--import-root",
                    str(m.root))
    assert code == 0
    head = out.split("\n\n", 1)[0]
    assert f"#   {m.path(f'{SYSTEM}/web.service')}:5: ProtectSystem=full" in head
    data = tomllib.loads(out)
    assert data["unit"]["after"] == ["rsyslog"]   # the alias resolved
    assert data["unit"]["enabled"] is True and data["service"]["user"] == "www"
    assert data["service"]["exec"] == ["/bin/true"]


def test_convert_a_file_outside_the_root(capsys, tmp_path):
    f = tmp_path / "lone.service"
    f.write_text("[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=/bin/b\n")
    code, out = run(capsys, "convert", str(f), "--import-root", str(tmp_path / "empty"))
    data = tomllib.loads(out)
    assert code == 0 and data["service"]["exec"] == ["/bin/b"]
    assert data["service"]["exec_start_pre"] == [["/bin/a"]]


def test_convert_a_file_that_is_no_unit(capsys, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello\n")
    with pytest.raises(ctl.CtlError, match="not a systemd unit"):
        ctl.run(["convert", str(f), "--import-root", str(tmp_path)])


def test_convert_all_writes_enabled_units_and_keeps_existing_files(m, capsys, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "rsyslog.toml").write_text("# mine\n")
    code, out = run(capsys, "convert", "--all", "-o", str(out_dir), "--import-root",
                    str(m.root))
    assert code == 0
    assert f"kept {out_dir / 'rsyslog.toml'} (exists)" in out
    assert f"wrote {out_dir / 'web.toml'}" in out
    assert f"  {m.path(f'{SYSTEM}/web.service')}:5: ProtectSystem=full" in out
    assert (out_dir / "rsyslog.toml").read_text() == "# mine\n"
    assert not (out_dir / "masked.toml").exists()
    source = m.catalog().units["web"]
    assert Catalog([str(out_dir)]).units["web"] == source


@pytest.mark.parametrize("args", [["convert"], ["convert", "--all"],
                                  ["convert", "--all", "-x", "d"], ["check", "--import-root"]])
def test_usage_errors(args):
    with pytest.raises(ctl.CtlError) as e:
        ctl.run(args)
    assert e.value.code == ctl.EXIT_USAGE


def test_check_says_when_a_program_is_not_there(m, capsys, tmp_path):
    own = tmp_path / "own3"
    own.mkdir()
    m.file("etc/fstab", "LABEL=data /srv ext4 defaults 0 2\n")
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program\n")
    (own / "gone.toml").write_text('[service]\nexec = "/usr/bin/no-such-daemon"\n')
    (own / "plain.toml").write_text(f'[service]\nexec = "{plain}"\n')
    (own / "later.toml").write_text('[service]\nexec = "/srv/app/run"\n')
    (own / "maybe.toml").write_text('[service]\nexec = "/bin/true"\n'
                                    'exec_start_pre = ["-/bin/optional-check"]\n')
    # as systemd's quotaon.service on a machine without quota: skipped, never run
    m.file("lib/systemd/system/quotaon.service", "[Unit]\nConditionPathExists=/sbin/quotaon\n"
           "[Service]\nType=oneshot\nExecStart=/sbin/quotaon -aug\n")
    code, out = run(capsys, "check", str(own), "--import-root", str(m.root))
    assert code == 1
    assert "quotaon" not in "".join(line for line in out.splitlines()
                                    if line.startswith(("error", "warning")))
    assert f"error: {own}/gone.toml: service.exec: exec /usr/bin/no-such-daemon: not found" \
        in out
    assert f"error: {own}/plain.toml: service.exec: exec {plain}: not an executable file" \
        in out
    assert f"warning: {own}/later.toml: service.exec: exec /srv/app/run: not found (it may " \
        "be there once /srv is mounted)" in out
    assert f"warning: {own}/maybe.toml: service.exec_start_pre: exec /bin/optional-check: " \
        "not found (its failure is ignored: -)" in out
