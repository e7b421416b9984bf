"""What Debian's initscripts made at boot: the pure rules (TMPTIME, ages, exceptions) and
the steps run against a directory standing for / (the /run/lock mount is the VM test's)."""

import grp
import os

import pytest

from vigil.boot import initscripts as i

DAY = 86400
NOW = 1_700_000_000.0


def fake_stat(age_days: float, directory: bool = False, uid: int = 0,
              atime_days: float | None = None) -> os.stat_result:
    mode = 0o40755 if directory else 0o100644
    t = NOW - age_days * DAY
    a = NOW - (age_days if atime_days is None else atime_days) * DAY
    return os.stat_result((mode, 1, 1, 1, uid, 0, 0, a, t, t))


@pytest.mark.parametrize("text, result", [
    ("", (0, None)),                                   # Debian's default: TMPTIME=0
    ("#TMPTIME=0\n", (0, None)),
    ("TMPTIME=7\n", (7, None)),
    ('TMPTIME="3"\n', (3, None)),
    ("TMPTIME=-1\n", (None, None)),
    ("TMPTIME=infinite\n", (None, None)),
    ("TMPTIME=infinity\n", (None, None)),
    ("TMPTIME=soon\n", (None, "/etc/default/rcS: TMPTIME=soon is not a number of days; "
                              "/tmp not cleaned")),
    ("TMPTIME=1.5\n", (None, "/etc/default/rcS: TMPTIME=1.5 is not a number of days; "
                             "/tmp not cleaned")),
])
def test_tmp_max_age(text, result):
    assert i.tmp_max_age(text) == result


def test_expired_as_find_counts_days():
    assert i.expired(fake_stat(0), 0, NOW)                  # TMPTIME=0: everything
    assert not i.expired(fake_stat(2.9), 2, NOW)           # -mtime +2: 3 whole days
    assert i.expired(fake_stat(3.0), 2, NOW)
    assert not i.expired(fake_stat(30, atime_days=1), 2, NOW)   # read yesterday: kept
    assert i.expired(fake_stat(30, directory=True, atime_days=1), 2, NOW)  # not for dirs


def test_kept_only_at_the_top_and_owned_by_root():
    assert i.kept("lost+found", fake_stat(9, directory=True))
    assert i.kept("...security-x", fake_stat(9))
    assert not i.kept("lost+found", fake_stat(9, directory=True, uid=1000))
    assert not i.kept("a/lost+found", fake_stat(9, directory=True))
    assert not i.kept("junk", fake_stat(9))


@pytest.fixture
def tmp(tmp_path):
    t = tmp_path / "tmp"
    t.mkdir()
    t.chmod(0o1777)
    (t / "file").write_text("x")
    (t / ".X0-lock").write_text("1234")
    (t / "dir/sub").mkdir(parents=True)
    (t / "dir/sub/deep").write_text("x")
    (t / "lost+found").mkdir()
    (t / "lost+found/#123").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    (t / "link").symlink_to(outside)
    return t


def _rcs(tmp_path, text: str) -> str:
    path = tmp_path / "rcS"
    path.write_text(text)
    return str(path)


def test_clean_tmp_default_removes_all_but_the_exceptions(tmp_path, tmp):
    assert i.clean_tmp(str(tmp), _rcs(tmp_path, "")) == []
    left = sorted(os.listdir(tmp))
    # root's lost+found stays (emptied); anyone else's goes like the rest
    assert left == (["lost+found"] if os.geteuid() == 0 else [])
    assert (tmp_path / "outside/precious").exists()          # the link is not followed


def test_clean_tmp_by_age(tmp_path, tmp):
    rcs = _rcs(tmp_path, "TMPTIME=2\n")
    assert i.clean_tmp(str(tmp), rcs, now=NOW) == []          # everything is young
    assert sorted(os.listdir(tmp)) == ["dir", "file", "link", "lost+found"]
    # ten days on, with nothing touched since: all of it goes, directories once emptied
    assert i.clean_tmp(str(tmp), rcs, now=os.stat(tmp / "file").st_mtime + 10 * DAY) == []
    assert sorted(os.listdir(tmp)) == (["lost+found"] if os.geteuid() == 0 else [])


def test_clean_tmp_never_and_refusals(tmp_path, tmp):
    assert i.clean_tmp(str(tmp), _rcs(tmp_path, "TMPTIME=infinite\n")) == []
    assert sorted(os.listdir(tmp)) == ["dir", "file", "link", "lost+found"]  # lock gone
    assert i.clean_tmp(str(tmp), _rcs(tmp_path, "TMPTIME=x\n")) == [
        "/etc/default/rcS: TMPTIME=x is not a number of days; /tmp not cleaned"]
    tmp.chmod(0o755)   # not world-writable: not a /tmp to clean
    assert i.clean_tmp(str(tmp), _rcs(tmp_path, "")) == []
    assert (tmp / "file").exists()
    assert i.clean_tmp(str(tmp_path / "none"), _rcs(tmp_path, "")) == []


def test_dirs_links_and_utmp(tmp_path):
    for d in ("run", "var", "dev", "etc"):
        (tmp_path / d).mkdir()
    (tmp_path / "var/run").mkdir()          # an admin's directory: left alone
    assert i.make_dirs(str(tmp_path)) == [] and (tmp_path / "run/sendsigs.omit.d").is_dir()
    assert i.make_links(str(tmp_path)) == []
    assert os.readlink(tmp_path / "run/shm") == "/dev/shm"
    assert os.readlink(tmp_path / "var/lock") == "/run/lock"
    assert os.readlink(tmp_path / "dev/stdin") == "fd/0"
    assert os.readlink(tmp_path / "etc/mtab") == "../proc/self/mounts"
    assert (tmp_path / "var/run").is_dir() and not (tmp_path / "var/run").is_symlink()
    assert i.make_links(str(tmp_path)) == []   # a second time: all there
    if os.geteuid() == 0:
        assert i.utmp_file(str(tmp_path)) == []
        st = os.stat(tmp_path / "run/utmp")
        assert st.st_mode & 0o777 == 0o664
        try:
            assert st.st_gid == grp.getgrnam("utmp").gr_gid
        except KeyError:
            pass   # no utmp group on this host
    (tmp_path / "run").rename(tmp_path / "gone")
    assert i.utmp_file(str(tmp_path)) == ["/run/utmp: No such file or directory"]
