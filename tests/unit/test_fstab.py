"""fstab: every field parsed, superblocks probed, and the mounting steps with mount(2) faked."""

import errno
import shutil
import subprocess

import pytest

from vigil import linux
from vigil.boot import fstab

DEBIAN = """\
# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=0a1b2c3d-1111-2222-3333-444455556666 /  ext4  errors=remount-ro 0  1
LABEL="my\\040data" /srv/my\\040data ext4 noatime,nodev,x-systemd.automount,comment=x 0 2

PARTUUID=abcd-01 /boot/efi vfat umask=0077,nofail,x-systemd.device-timeout=5s 0 1
/dev/sr0  /media/cdrom0  udf,iso9660 user,noauto 0 0
tmpfs /tmp tmpfs defaults,nosuid,size=50%
/srv/a /srv/b none rbind,ro
server:/export /mnt/nfs nfs _netdev,rw 0 0
PARTLABEL=swap none swap sw,pri=5,discard 0 0
/swapfile none swap defaults
"""


def test_debian_fstab_every_field():
    tab = fstab.parse(DEBIAN)
    assert tab.problems == []
    root, data, efi, cd, tmp, bind, nfs = tab.mounts
    assert root.spec == "UUID=0a1b2c3d-1111-2222-3333-444455556666" and root.target == "/"
    assert (root.flags, root.data, root.freq, root.passno) == (0, "errors=remount-ro", 0, 1)
    assert tab.root() is root
    assert data.spec == "LABEL=my data" and data.target == "/srv/my data"
    assert data.flags == linux.MS_NOATIME | linux.MS_NODEV and data.data == ""
    assert data.passno == 2 and data.line == 5
    assert efi.nofail and efi.data == "umask=0077" and efi.device_timeout == 5
    assert cd.noauto and cd.flags == linux.MS_NOEXEC | linux.MS_NOSUID | linux.MS_NODEV
    assert tmp.flags == linux.MS_NOSUID and tmp.data == "size=50%" and tmp.passno == 0
    assert bind.flags == linux.MS_BIND | linux.MS_REC | linux.MS_RDONLY
    assert nfs.netdev and nfs.data == ""
    assert [s.spec for s in tab.swaps] == ["PARTLABEL=swap", "/swapfile"]
    assert tab.swaps[0].option_value("pri") == "5" and tab.swaps[0].is_swap


def test_options_later_wins_and_user_can_be_overridden():
    flags, data = fstab.parse_options(["user", "exec", "ro", "rw", "discard", "x-foo=1"])
    assert flags == linux.MS_NOSUID | linux.MS_NODEV and data == "discard"
    assert fstab.parse_options(["defaults"]) == (0, "")
    assert fstab.parse_options(["sync", "dirsync", "lazytime", "strictatime", "bind"])[0] == (
        linux.MS_SYNCHRONOUS | linux.MS_DIRSYNC | linux.MS_LAZYTIME | linux.MS_STRICTATIME
        | linux.MS_BIND)


def test_bad_lines_are_problems_naming_the_line():
    tab = fstab.parse("\n/dev/a\n/dev/b /b ext4 defaults x 0\n/dev/c relative ext4\n"
                      "a b c d 0 0 extra\nUUID= /u ext4\n/dev/ok /ok ext4\n", "/etc/fstab")
    assert tab.problems == [
        "/etc/fstab:2: needs at least device, mount point and type, got '/dev/a'",
        "/etc/fstab:3: dump and pass must be numbers",
        "/etc/fstab:4: mount point 'relative' is not an absolute path",
        "/etc/fstab:5: more than 6 fields (a space in a name must be written \\040)",
        "/etc/fstab:6: UUID= needs a value",
    ]
    assert [e.target for e in tab.mounts] == ["/ok"] and tab.mounts[0].line == 7
    assert fstab.parse("").mounts == []


def test_unescape_and_proc_mounts():
    assert fstab.unescape("a\\040b\\011c\\134d\\x") == "a b\tc\\d\\x"
    mounts = fstab.parse_mounts("/dev/vda1 / ext4 rw,relatime 0 0\n"
                                "/dev/vdb /my\\040disk xfs ro 0 0\n")
    assert mounts == {"/": ("/dev/vda1", "ext4", "rw,relatime"),
                      "/my disk": ("/dev/vdb", "xfs", "ro")}


def test_probe_synthetic_superblocks():
    ext = bytearray(4096)
    ext[1080:1082] = (0xEF53).to_bytes(2, "little")
    ext[1120:1124] = (0x40).to_bytes(4, "little")     # extents: ext4
    ext[1128:1144] = bytes(range(16))
    ext[1144:1148] = b"root"
    assert fstab.probe(bytes(ext)) == {"TYPE": "ext4", "LABEL": "root",
                                       "UUID": "00010203-0405-0607-0809-0a0b0c0d0e0f"}
    fat = bytearray(512)
    fat[510:512] = b"\x55\xaa"
    fat[82:90] = b"FAT32   "
    fat[67:71] = bytes([0x78, 0x56, 0x34, 0x12])
    fat[71:82] = b"NO NAME    "
    assert fstab.probe(bytes(fat)) == {"TYPE": "vfat", "UUID": "1234-5678", "LABEL": ""}
    assert fstab.probe(bytes(8192)) == {}


@pytest.mark.skipif(not (shutil.which("mkfs.ext4") and shutil.which("mkswap")),
                    reason="mkfs.ext4 and mkswap (e2fsprogs, util-linux) are not installed")
def test_probe_real_images(tmp_path):
    img = tmp_path / "ext4.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "vigil-root", "-U",
                    "6f0c5b2a-7d1e-4c3b-9a8f-1e2d3c4b5a69", str(img), "8M"], check=True)
    assert fstab.probe(img.read_bytes()[:69632]) == {
        "TYPE": "ext4", "UUID": "6f0c5b2a-7d1e-4c3b-9a8f-1e2d3c4b5a69", "LABEL": "vigil-root"}
    swp = tmp_path / "swap.img"
    swp.write_bytes(bytes(1 << 20))
    subprocess.run(["mkswap", "-L", "sw", "-U", "11111111-2222-3333-4444-555555555555",
                    str(swp)], check=True, capture_output=True)
    assert fstab.probe(swp.read_bytes()[:69632]) == {
        "TYPE": "swap", "UUID": "11111111-2222-3333-4444-555555555555", "LABEL": "sw"}


class FakeMounts:
    """Records mount(2) calls; /proc/self/mounts shows only what is listed."""

    def __init__(self, monkeypatch, mounted: str = "", fail: set[str] | None = None):
        self.calls: list[tuple] = []
        self.fail = fail or set()
        monkeypatch.setattr(fstab.linux, "mount", self.mount)
        monkeypatch.setattr(fstab, "read_text", lambda path, size=-1: mounted
                            if path == "/proc/self/mounts" else "")
        monkeypatch.setattr(fstab, "run_fsck", lambda dev, kind: None)
        monkeypatch.setattr(fstab, "check_all", lambda found: {e.target: None for e, _ in found})

    def mount(self, source, target, fstype, flags=0, data=None):
        if target in self.fail:
            raise OSError(22, "Invalid argument")
        self.calls.append((source, target, fstype, flags, data))


def test_mount_all_in_order_skipping_and_reporting(monkeypatch, tmp_path):
    made = tmp_path / "made" / "here"
    text = (f"/ / ext4 defaults 0 1\n"
            f"tmpfs {made} tmpfs size=1M 0 0\n"
            f"/dev/nonexistent-vigil {tmp_path}/a ext4 nofail 0 2\n"
            f"/dev/nonexistent-vigil {tmp_path}/b ext4 defaults 0 2\n"
            f"tmpfs {tmp_path}/skip tmpfs noauto\n"
            f"tmpfs {tmp_path}/already tmpfs defaults\n"
            f"{tmp_path} {tmp_path}/bind none bind,ro\n"
            f"tmpfs {tmp_path}/bad tmpfs defaults\n")
    fake = FakeMounts(monkeypatch, mounted=f"tmpfs {tmp_path}/already tmpfs rw 0 0\n",
                      fail={f"{tmp_path}/bad"})
    tab = fstab.parse(text)
    problems = fstab.mount_all(tab, default_timeout=0)
    assert made.is_dir()
    assert fake.calls == [
        ("tmpfs", str(made), "tmpfs", 0, "size=1M"),
        (str(tmp_path), f"{tmp_path}/bind", None, linux.MS_BIND, None),
        ("none", f"{tmp_path}/bind", None,
         linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY, None),
    ]
    assert problems == [f"fstab line 8: tmpfs on {tmp_path}/bad: Invalid argument"]
    # the absent devices are not waited for: a unit each waits for them after stage 1
    assert [e.line for e in tab.pending] == [3, 4]


def test_essential_mounts_are_waited_for_in_stage_1(monkeypatch):
    FakeMounts(monkeypatch)
    tab = fstab.parse("/dev/nonexistent-vigil /usr ext4 defaults 0 2\n"
                      "/dev/nonexistent-vigil /var/log ext4 defaults 0 2\n")
    assert fstab.mount_all(tab, default_timeout=0) == [
        "fstab line 1: /dev/nonexistent-vigil on /usr: device not found within 0 s"]
    assert [e.target for e in tab.pending] == ["/var/log"]


def test_mount_unit_names_are_systemds():
    assert fstab.mount_unit_name("/srv/my-data") == "srv-my\\x2ddata.mount"
    assert fstab.mount_unit_name("/mnt/a b/.c") == "mnt-a\\x20b-.c.mount"
    assert fstab.mount_unit_name("/") == "-.mount"
    from vigil.unit import mount_point
    for path in ("/srv/my-data", "/mnt/a b/.c", "/data"):
        assert mount_point(fstab.mount_unit_name(path)) == path


def test_mount_units_for_the_pending_entries(tmp_path):
    import tomllib
    tab = fstab.parse("LABEL=late /srv/data ext4 nofail 0 2\n")
    tab.pending = list(tab.mounts)
    units = fstab.mount_units(tab, ["/usr/lib/vigil/vigil"])
    assert list(units) == ["srv-data.mount"]
    raw = tomllib.loads(units["srv-data.mount"])
    assert raw["service"]["exec"] == ["/usr/lib/vigil/vigil", "--mount", "/srv/data"]
    assert raw["service"]["type"] == "notify" and raw["service"]["remain_after_exit"]
    assert raw["service"]["restart"] == "never", "a device that did not come is an answer"


def test_remount_root(monkeypatch):
    fake = FakeMounts(monkeypatch, mounted="/dev/root / ext4 ro,relatime 0 0\n")
    tab = fstab.parse("tmpfs / ext4 noatime,errors=remount-ro 0 0\n")
    assert fstab.remount_root(tab) == []
    assert fake.calls == [("", "/", None, linux.MS_REMOUNT | linux.MS_NOATIME,
                           "errors=remount-ro")]
    assert fstab.remount_root(fstab.parse("")) == []


def test_find_device_plain_paths(tmp_path):
    assert fstab.find_device(str(tmp_path)) == str(tmp_path)
    assert fstab.find_device("/dev/nonexistent-vigil") is None
    assert fstab.wait_for_device("/dev/nonexistent-vigil", 0) is None


def test_why_keeps_the_reason_alone():
    assert linux.why(OSError(2, "mount /x: No such file or directory")) == (
        "No such file or directory")
    assert linux.why(OSError(19, "device not found")) == "device not found"


def test_failed_remount_of_root_names_the_reason(monkeypatch):
    # linux.mount is faked (FakeMounts): a real remount of / cannot run in a unit test.
    FakeMounts(monkeypatch, mounted="/dev/root / ext4 ro,relatime 0 0\n", fail={"/"})
    tab = fstab.parse("/dev/vda / ext4 errors=remount-ro 0 0\n")
    assert fstab.remount_root(tab) == [
        "fstab line 1: /dev/vda on /: remount: Invalid argument"]


def test_mount_device_probes_then_tries_the_kernels_types(monkeypatch, tmp_path):
    """Shared by fstab `auto` entries and root= in the initramfs; mount(2) is faked."""
    tried = []

    def fake_mount(source, target, fstype, flags=0, data=None):
        tried.append(fstype)
        if fstype == "btrfs":
            raise OSError(errno.EIO, "mount /t: Input/output error")
        if fstype != "ext4":
            raise OSError(errno.EINVAL, "mount /t: Invalid argument")

    monkeypatch.setattr(fstab.linux, "mount", fake_mount)
    monkeypatch.setattr(fstab, "read_text", lambda path, size=-1:
                        "nodev\ttmpfs\n\text3\n\tbtrfs\n\text2\n\text4\n\tvfat\n")
    ext = bytearray(69632)
    ext[1080:1082] = (0xEF53).to_bytes(2, "little")
    ext[1120:1124] = (0x40).to_bytes(4, "little")
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(ext))
    assert fstab.mount_device(str(disk), "/t", "auto", 0, "") == "ext4"
    assert tried == ["ext4"]   # the superblock said so: no guessing
    tried.clear()
    blank = tmp_path / "blank"
    blank.write_bytes(bytes(8192))
    assert fstab.mount_device(str(blank), "/t", None, 0, "") == "ext4"
    assert tried == ["ext3", "btrfs", "ext2", "ext4"]
    tried.clear()
    with pytest.raises(OSError) as failed:
        fstab.mount_device(str(disk), "/t", "vfat", 0, "")
    assert tried == ["vfat"] and failed.value.errno == errno.EINVAL
    # Nothing fits: the error that says most (not "Invalid argument" for each guess).
    monkeypatch.setattr(fstab, "read_text", lambda path, size=-1: "\text3\n\tbtrfs\n\txfs\n")
    with pytest.raises(OSError) as failed:
        fstab.mount_device(str(blank), "/t", "", 0, "")
    assert linux.why(failed.value) == "Input/output error"
    monkeypatch.setattr(fstab, "read_text", lambda path, size=-1: "nodev\tproc\n")
    with pytest.raises(OSError) as failed:
        fstab.mount_device(str(blank), "/t", "auto", 0, "")
    assert failed.value.errno == errno.ENODEV


def test_remote_fs_unit_mounts_the_netdev_entries(tmp_path):
    from vigil.boot import system
    from vigil.unit import Catalog
    tab = fstab.parse("srv:/export /mnt/nfs nfs _netdev,rw 0 0\n"
                      '//srv/share /mnt/my\\040"share cifs _netdev,nofail 0 0\n'
                      "srv:/later /mnt/later nfs _netdev,noauto 0 0\n"
                      "tmpfs /local tmpfs defaults 0 0\n")
    units = fstab.remote_fs_unit(tab)
    assert list(units) == ["remote-fs"]
    assert system.write_units(units, str(tmp_path)) == []
    catalog = Catalog([str(tmp_path / "run/vigil/units")])
    assert catalog.errors == {}
    unit = catalog.units["remote-fs"]
    assert unit.type == "oneshot" and unit.enabled
    assert set(unit.after) == set(unit.wants) == {"networking", "network-online.target"}
    # systemd's remote-fs.target means "the remote file systems are mounted": cron's
    # After=remote-fs.target must wait for this unit
    assert unit.before == ("remote-fs.target",)
    assert unit.exec.argv[:2] == ("/bin/sh", "-c")
    assert unit.exec.argv[3:] == ("remote-fs", "/mnt/nfs", '/mnt/my "share')   # noauto: not here
    assert fstab.remote_fs_unit(fstab.parse("tmpfs /t tmpfs defaults\n")) == {}


def test_remote_fs_script_mounts_each_target_and_reports_a_failure(tmp_path):
    """The script itself, with `mount` and `mountpoint` faked on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log"
    (bin_dir / "mountpoint").write_text(f'#!/bin/sh\n[ "$2" = "{tmp_path}/up" ]\n')
    (bin_dir / "mount").write_text(f'#!/bin/sh\necho "$1" >> {log}\n'
                                   f'[ "$1" != "{tmp_path}/down" ]\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    targets = [f"{tmp_path}/a b", f"{tmp_path}/up", f"{tmp_path}/down", f"{tmp_path}/c"]
    run = subprocess.run(["/bin/sh", "-c", fstab.REMOTE_FS_SCRIPT, "remote-fs", *targets],
                         env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=False)
    assert run.returncode == 1
    assert log.read_text().splitlines() == [f"{tmp_path}/a b", f"{tmp_path}/down",
                                            f"{tmp_path}/c"]
    assert (tmp_path / "a b").is_dir()


class FakeMonitor:
    """pyudev's Monitor.poll on a fake clock: each poll sleeps its whole timeout unless an
    event is due in it; the device's link appears some time after its event."""

    def __init__(self, clock: list[float], event_at: float = float("inf")):
        self.clock, self.event_at, self.polls = clock, event_at, 0

    def poll(self, timeout):
        self.polls += 1
        if self.clock[0] < self.event_at <= self.clock[0] + timeout:
            self.clock[0] = self.event_at
            return "add"
        self.clock[0] += timeout
        return None


def test_waiting_for_a_device_sleeps_between_events(monkeypatch):
    """A nofail disk's mount unit waits for ever: it must not wake 4 times a second
    meanwhile (under TCG that took a tenth of the guest's CPU from the boot), yet it
    finds the device soon after its event, when udev has made the link."""
    clock = [0.0]
    monitor = FakeMonitor(clock, event_at=3000.0)
    monkeypatch.setattr(fstab.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(fstab, "_block_monitor", lambda: monitor)
    monkeypatch.setattr(fstab, "find_device",
                        lambda spec: "/dev/vdx" if clock[0] >= 3001.5 else None)
    assert fstab.wait_for_device("LABEL=late", float("inf")) == "/dev/vdx"
    assert 3001.5 <= clock[0] <= 3002.0          # looked again shortly after the event
    assert monitor.polls < 100, monitor.polls   # 0.25 s polls would be 12000
    monitor.polls, clock[0] = 0, 0.0
    monkeypatch.setattr(fstab, "find_device", lambda spec: None)
    assert fstab.wait_for_device("LABEL=never", 60) is None    # gives up at its timeout
    assert clock[0] == pytest.approx(60) and monitor.polls < 50


# fsck itself cannot show its order (on images this small it is done at once): a stand-in
# records when each check starts and ends, and fails the devices named "bad".
FSCK_STANDIN = """#!/bin/sh
for last; do :; done
echo "start $last" >> {log}
sleep 0.3
echo "end $last" >> {log}
case "$last" in *bad*) exit 4;; esac
"""


def _entries(text):
    return [(e, e.spec) for e in fstab.parse(text, "/etc/fstab").mounts]


def test_fsck_runs_disks_at_once_and_one_disk_in_turn_pass_by_pass(monkeypatch, tmp_path):
    log = tmp_path / "log"
    standin = tmp_path / "fsck"
    standin.write_text(FSCK_STANDIN.format(log=log))
    standin.chmod(0o755)
    monkeypatch.setattr(fstab, "_fsck_program", lambda: str(standin))
    found = _entries("/dev/a1 /a ext4 defaults 0 2\n"
                     "/dev/b1 /b ext4 defaults 0 2\n"
                     "/dev/a2 /a2 ext4 defaults 0 2\n"
                     "/dev/bad /c ext4 defaults 0 3\n"
                     "/dev/first /first ext4 defaults 0 1\n")
    verdicts = fstab.check_all(found, disk_of=lambda device: device[5])  # /dev/a1 -> a
    lines = log.read_text().split("\n")[:-1]
    assert lines[:2] == ["start /dev/first", "end /dev/first"], "pass 1 alone, first"
    assert sorted(lines[2:4]) == ["start /dev/a1", "start /dev/b1"], "two disks at once"
    assert sorted(lines[4:6]) == ["end /dev/a1", "end /dev/b1"]
    assert lines[6:8] == ["start /dev/a2", "end /dev/a2"], "a's second after its first"
    assert lines[8:] == ["start /dev/bad", "end /dev/bad"], "pass 3 after pass 2"
    assert verdicts == {"/first": None, "/a": None, "/b": None, "/a2": None,
                        "/c": "fsck found errors it could not correct (exit status 4)"}


def test_without_fsck_every_file_system_may_be_mounted(monkeypatch):
    monkeypatch.setattr(fstab, "_fsck_program", lambda: None)
    assert fstab.check_all(_entries("/dev/a1 /a ext4 defaults 0 2\n")) == {"/a": None}


def test_whole_disk_from_sys(tmp_path):
    # the layout /sys has: class/block/NAME links to devices/.../block/DISK[/PART], and a
    # partition's directory has a file "partition" (there is no partitioned disk here)
    disk = tmp_path / "devices/pci0000:00/virtio1/block/vdb"
    (disk / "vdb2").mkdir(parents=True)
    (disk / "vdb2/partition").write_text("2\n")
    block = tmp_path / "class/block"
    block.mkdir(parents=True)
    (block / "vdb").symlink_to(disk)
    (block / "vdb2").symlink_to(disk / "vdb2")
    assert fstab.whole_disk("/dev/vdb2", str(block)) == "vdb"
    assert fstab.whole_disk("/dev/vdb", str(block)) == "vdb"
    assert fstab.whole_disk("/dev/loop7", str(block)) == "loop7", "not in /sys: itself"


def test_a_file_system_fsck_could_not_mend_is_not_mounted(monkeypatch, tmp_path):
    fake = FakeMounts(monkeypatch)
    monkeypatch.setattr(fstab, "find_device", lambda spec: "/dev/vd" + spec[-1])
    asked = []

    def check_all(found):
        asked.extend((e.target, d) for e, d in found)
        return {f"{tmp_path}/bad": "fsck found errors it could not correct (exit status 4)"}
    monkeypatch.setattr(fstab, "check_all", check_all)
    tab = fstab.parse(f"LABEL=b {tmp_path}/bad ext4 defaults 0 2\n"
                      f"LABEL=c {tmp_path}/good ext4 defaults 0 2\n"
                      f"LABEL=d {tmp_path}/unchecked ext4 defaults 0 0\n")
    problems = fstab.mount_all(tab)
    assert asked == [(f"{tmp_path}/bad", "/dev/vdb"), (f"{tmp_path}/good", "/dev/vdc")]
    assert [c[:2] for c in fake.calls] == [("/dev/vdc", f"{tmp_path}/good"),
                                           ("/dev/vdd", f"{tmp_path}/unchecked")]
    assert len(problems) == 1 and "line 1" in problems[0] and "exit status 4" in problems[0]
