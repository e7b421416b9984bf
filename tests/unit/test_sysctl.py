"""sysctl.d and /etc/sysctl.conf: parsed (pure), ordered as procps does, written to a fake
/proc/sys (a directory of files: a real one cannot be written by a test)."""

import os

import pytest

from vigil.boot import sysctl

DEBIAN_PROTECT_LINKS = """\
###################################################################
# Protected links
#
# Protects against creating or following links under certain conditions
fs.protected_fifos = 1
fs.protected_hardlinks = 1
fs.protected_regular = 2
fs.protected_symlinks = 1
"""


@pytest.mark.parametrize("key, path", [
    ("kernel.pid_max", "kernel/pid_max"),
    ("net/ipv4/ip_forward", "net/ipv4/ip_forward"),
    # a VLAN interface: the dot of its name is written as a slash in a dotted key...
    ("net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
    # ...and stays a dot when the key uses slashes
    ("net/ipv4/conf/eth0.100/rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
    ("kernel", "kernel"),
    ("kernel..pid_max", "kernel/pid_max"),          # a repeated separator counts once
    ("net.ipv4.conf.*.rp_filter", "net/ipv4/conf/*/rp_filter"),
    ("", None), ("..", None), ("kernel/../../etc/passwd", None), ("/", None),
])
def test_key_path(key, path):
    assert sysctl.key_path(key) == path


def test_parse_real_and_hostile_lines():
    settings, problems = sysctl.parse(
        DEBIAN_PROTECT_LINKS + "; a semicolon comment\n  # indented comment\n\n"
        "-kernel.no_such = 1\nvm/swappiness=10\n  kernel.domainname =  a b \n"
        "no equals sign\n-net.ipv4.conf.lo.rp_filter\nkernel/../../etc/shadow = x\n"
        "kernel.empty =\n=1\n", "/etc/sysctl.d/x.conf")
    assert [(s.where, s.key, s.path, s.value, s.ignore_failure) for s in settings] == [
        ("/etc/sysctl.d/x.conf:5", "fs.protected_fifos", "fs/protected_fifos", "1", False),
        ("/etc/sysctl.d/x.conf:6", "fs.protected_hardlinks", "fs/protected_hardlinks", "1",
         False),
        ("/etc/sysctl.d/x.conf:7", "fs.protected_regular", "fs/protected_regular", "2", False),
        ("/etc/sysctl.d/x.conf:8", "fs.protected_symlinks", "fs/protected_symlinks", "1",
         False),
        ("/etc/sysctl.d/x.conf:12", "kernel.no_such", "kernel/no_such", "1", True),
        ("/etc/sysctl.d/x.conf:13", "vm/swappiness", "vm/swappiness", "10", False),
        ("/etc/sysctl.d/x.conf:14", "kernel.domainname", "kernel/domainname", "a b", False),
        ("/etc/sysctl.d/x.conf:16", "net.ipv4.conf.lo.rp_filter", "net/ipv4/conf/lo/rp_filter",
         None, True),
        ("/etc/sysctl.d/x.conf:18", "kernel.empty", "kernel/empty", "", False),
    ]
    assert problems == [
        "/etc/sysctl.d/x.conf:15: expected key = value, got 'no equals sign'",
        "/etc/sysctl.d/x.conf:17: 'kernel/../../etc/shadow' is not a key under /proc/sys",
        "/etc/sysctl.d/x.conf:19: '' is not a key under /proc/sys",
    ]
    assert sysctl.parse("", "f") == ([], [])


def test_files_masking_order_and_sysctl_conf_last(tmp_path):
    for d, name in (("usr/lib/sysctl.d", "50-pid-max.conf"), ("etc/sysctl.d", "50-pid-max.conf"),
                    ("usr/lib/sysctl.d", "99-protect-links.conf"), ("run/sysctl.d", "10-a.conf"),
                    ("lib/sysctl.d", "zz.conf"), ("usr/local/lib/sysctl.d", "README"),
                    ("etc", "sysctl.conf")):
        os.makedirs(tmp_path / d, exist_ok=True)
        (tmp_path / d / name).write_text("")
    (tmp_path / "etc/sysctl.d/99-sysctl.conf").symlink_to("../sysctl.conf")
    assert sysctl.files(str(tmp_path)) == [str(tmp_path / p) for p in (
        "run/sysctl.d/10-a.conf", "etc/sysctl.d/50-pid-max.conf",
        "usr/lib/sysctl.d/99-protect-links.conf", "etc/sysctl.d/99-sysctl.conf",
        "lib/sysctl.d/zz.conf", "etc/sysctl.conf")]
    (tmp_path / "etc/sysctl.conf").unlink()
    assert str(tmp_path / "etc/sysctl.conf") not in sysctl.files(str(tmp_path))


def test_globs_skip_what_other_lines_name():
    settings, _ = sysctl.parse("net.ipv4.conf.*.rp_filter = 2\n"
                               "net.ipv4.conf.lo.rp_filter = 0\n"
                               "-net.ipv4.conf.eth0.rp_filter\n", "f")
    found = ["net/ipv4/conf/all/rp_filter", "net/ipv4/conf/eth0/rp_filter",
             "net/ipv4/conf/lo/rp_filter"]
    plan = [(s.where, path, s.value) for s, path in sysctl.writes(settings, lambda p: found)]
    assert plan == [("f:1", "net/ipv4/conf/all/rp_filter", "2"),
                    ("f:2", "net/ipv4/conf/lo/rp_filter", "0")]
    assert [p for _s, p in sysctl.writes(settings)] == ["net/ipv4/conf/lo/rp_filter"]


def test_apply_writes_values_and_names_each_failure(tmp_path):
    proc = tmp_path / "proc/sys"
    for key in ("kernel/pid_max", "vm/swappiness", "net/ipv4/conf/all/rp_filter",
                "net/ipv4/conf/lo/rp_filter"):
        os.makedirs(proc / os.path.dirname(key), exist_ok=True)
        (proc / key).write_text("0\n")
    (proc / "kernel/read_only").write_text("0\n")
    (proc / "kernel/read_only").chmod(0o444)
    root = tmp_path / "root"
    (root / "usr/lib/sysctl.d").mkdir(parents=True)
    (root / "etc/sysctl.d").mkdir(parents=True)
    (root / "usr/lib/sysctl.d/50-pid-max.conf").write_text("kernel.pid_max = 4194304\n")
    (root / "etc/sysctl.d/50-pid-max.conf").write_text("kernel.pid_max = 65536\n")
    (root / "etc/sysctl.d/60-x.conf").write_text(
        "vm/swappiness = 17\nkernel.no_such = 1\n-kernel.also_no_such = 1\n"
        "net.ipv4.conf.*.rp_filter = 2\nbroken\n")
    (root / "etc/sysctl.conf").write_text("vm.swappiness = 23\n")
    problems = sysctl.apply(str(root), str(proc))
    assert (proc / "kernel/pid_max").read_text() == "65536\n"     # /etc masks /usr/lib
    assert (proc / "vm/swappiness").read_text() == "23\n"         # sysctl.conf last
    assert (proc / "net/ipv4/conf/lo/rp_filter").read_text() == "2\n"
    assert problems == [
        f"{root}/etc/sysctl.d/60-x.conf:5: expected key = value, got 'broken'",
        f"{root}/etc/sysctl.d/60-x.conf:2: kernel.no_such: unknown key",
    ]
    if os.geteuid() != 0:   # root writes a 0444 file anyway; /proc/sys would refuse it
        (root / "etc/sysctl.conf").write_text("kernel.read_only = 1\n")
        assert sysctl.apply(str(root), str(proc))[-1] == (
            f"{root}/etc/sysctl.conf:1: kernel.read_only: Permission denied")
