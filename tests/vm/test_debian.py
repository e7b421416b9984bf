"""The whole boot stage on a real Debian root: initramfs → root= on /dev/vda → vigil.

One boot for the module: the initramfs (vigil + the root disk's modules) mounts the
Debian disk that `make image` built, switches to it and runs /sbin/vigil there, which
does stage 1 on a real system (fstab, swap, modules-load.d, udev, hostname, timezone,
sysctl.d, the loopback, Debian's boot-time files, gettys, the remote-fs unit), then runs
the machine's own daemons from Debian's packages (sshd, cron, rsyslog, ifupdown's
networking; at installed with dpkg -i) from their own units and scripts.
The disks are copies, so the last test can power off and read what reached the disk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vm.qemu import Config, Console, Exit

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
# VIGIL_FROZEN: boot another frozen tree (e.g. a branch's build) without touching build/.
FROZEN = Path(os.environ.get("VIGIL_FROZEN", REPO / "build" / "frozen" / "vigil"))
OUT = REPO / "build" / "test"
APPEND = "root=/dev/vda init=/sbin/vigil"
ROOT_UUID = "6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"  # tests/vm/debian/rootfs/etc/fstab
MARKER = "/root/written-before-poweroff"
BOOT_TIMEOUT = 240  # TCG: about 35 s here


def _disks() -> tuple[Path, Path]:
    """The cached disks (built or refreshed by vm.image), copied for this run."""
    from vm import image

    if os.geteuid() != 0:
        pytest.skip("the Debian disk is built as root (mmdebstrap, mkfs.ext4 -d)")
    if shutil.which("mmdebstrap") is None and not any(image.image_dir().glob("*.tar")):
        pytest.skip("mmdebstrap is not installed (make image installs it)")
    disks = image.build()
    OUT.mkdir(parents=True, exist_ok=True)
    copies = (OUT / "debian-root.img", OUT / "debian-data.img")
    for src, dst in zip((disks.root, disks.data), copies, strict=True):
        subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
    return copies


@pytest.fixture(scope="module")
def disk_initramfs(images: dict[str, Path]) -> Path:
    from vm import image

    return image.build_initramfs(OUT / "initramfs-disk.cpio.gz", frozen=FROZEN)


@pytest.fixture(scope="module")
def root_disk(images: dict[str, Path]) -> Iterator[tuple[Path, Path]]:
    yield _disks()  # after `images`: the frozen vigil it installs is up to date


@pytest.fixture(scope="module")
def debian(images: dict[str, Path], disk_initramfs: Path,
           root_disk: tuple[Path, Path]) -> Iterator[Console]:
    from vm import image

    cfg = Config(images["kernel"], disk_initramfs, append=APPEND, disks=list(root_disk),
                 extra=image.nic_args())   # the disk's networking brings it up
    with Console(cfg, log_path=OUT / "console-debian.log") as console:
        # vigil's own log lines share the console with the shell's output.
        console.noise.append(r"^vigil: .*\n")
        console.login(timeout=BOOT_TIMEOUT)
        yield console


def test_boots_from_the_disk_to_a_login(debian: Console) -> None:
    mounts = debian.check("cat /proc/mounts")
    assert re.search(r"^/dev/vda / ext4 ", mounts, re.MULTILINE), mounts
    assert debian.check("readlink /proc/1/exe").strip() == "/usr/lib/vigil/vigil"
    assert debian.check("tr '\\0' ' ' < /proc/1/cmdline").split()[0] == "/sbin/vigil"
    # The initramfs is gone: nothing of it is left mounted.
    assert "/newroot" not in mounts


def test_root_disk_modules_are_loaded(debian: Console) -> None:
    loaded = {line.split()[0] for line in debian.check("cat /proc/modules").splitlines()}
    assert {"virtio_blk", "ext4"} <= loaded


def test_static_device_nodes_load_their_module_when_opened(debian: Console) -> None:
    # made in stage 1 from modules.devname, as kmod static-nodes does under systemd
    out = debian.check("stat -c '%F %t:%T' /dev/fuse /dev/net/tun /dev/loop-control")
    assert out.split("\n")[:3] == ["character special file a:e5",
                                    "character special file a:c8",
                                    "character special file a:ed"], out
    # losetup opens /dev/loop-control: the kernel asks modprobe for char-major-10-237
    debian.check("losetup -f")
    assert "loop" in {line.split()[0] for line in debian.check("cat /proc/modules").splitlines()}


def test_modules_load_d(debian: Console) -> None:
    loaded = {line.split()[0] for line in debian.check("cat /proc/modules").splitlines()}
    assert "dummy" in loaded  # /etc/modules-load.d/vigil-test.conf


def test_data_disk_is_mounted(debian: Console) -> None:
    assert re.search(r"^/dev/vdb /data ext4 ", debian.check("cat /proc/mounts"), re.MULTILINE)
    assert debian.check("cat /data/hello.txt").strip() == "the data disk"
    assert "vigil: fsck /dev/vdb: clean" in debian.text, "checked before (fstab pass 2)"


def test_swap_file_is_active(debian: Console) -> None:
    assert re.search(r"^/swapfile\s+file\s", debian.check("cat /proc/swaps"), re.MULTILINE)


def test_a_swap_device_that_comes_late_is_turned_on_by_its_helper(debian: Console) -> None:
    """What a swap unit (made at boot for a swap device not there) runs: `vigil --swap
    SPEC` waits for the device, then swapon. Here the device is a loop device made now."""
    debian.check("cp /etc/fstab /root/fstab.saved && "
                 "echo 'LABEL=vigil-late-swap none swap sw,x-systemd.device-timeout=2 0 0' "
                 ">> /etc/fstab")
    # its log lines start "vigil: ", which the console filter takes for PID 1's own
    helper = ("vigil --swap LABEL=vigil-late-swap >/root/swap.out 2>&1; echo status=$?; "
              "sed 's/^/| /' /root/swap.out")
    try:
        out = debian.check(helper, timeout=60)
        assert "status=1" in out and "device not found within 2 s" in out, out
        loop = debian.check("truncate -s 8M /root/late.swap && "
                            "losetup -f --show /root/late.swap").strip()
        debian.check(f"mkswap -L vigil-late-swap {loop} >/dev/null && udevadm settle")
        out = debian.check(helper, timeout=60)
        assert "status=0" in out, out
        assert re.search(rf"^{loop}\s+partition\s", debian.check("cat /proc/swaps"), re.M)
        debian.check(f"swapoff {loop} && losetup -d {loop}")
    finally:
        debian.check("mv /root/fstab.saved /etc/fstab && rm -f /root/late.swap")


def test_missing_disks(debian: Console) -> None:
    """Absent disks hold nothing up: each has a mount unit that waits for its device. The
    one with a device timeout fails after it, saying why; the nofail one keeps waiting."""
    # its helper starts, waits its 5 s for the device, then fails
    missing = _until(debian, "vigilctl status mnt-missing.mount", r"state:\s+failed", 60)
    assert "--mount /mnt/missing" in missing
    optional = debian.run("vigilctl status mnt-optional.mount")[0]
    assert re.search(r"state:\s+starting", optional), optional
    assert "waiting for LABEL=vigil-late (nofail: until it comes)" in optional
    assert "device not found within 5 s" in debian.check("vigilctl logs mnt-missing.mount")
    mounts = debian.check("cat /proc/mounts")
    assert "/mnt/missing" not in mounts and "/mnt/optional" not in mounts


def test_a_nofail_disk_attached_later_is_mounted_then(debian: Console) -> None:
    """The nofail disk of the test fstab, plugged in after boot (QEMU's device_add on the
    PCI bus): its mount unit, asleep until a block device event, mounts it."""
    image = OUT / "debian-late.img"
    content = OUT / "late"
    content.mkdir(parents=True, exist_ok=True)
    (content / "hello.txt").write_text("the late disk\n")
    image.unlink(missing_ok=True)
    subprocess.run(["mkfs.ext4", "-q", "-L", "vigil-late", "-d", str(content), str(image),
                    "8M"], check=True)
    debian.monitor(f"drive_add 0 if=none,id=late,format=raw,file={image}")
    debian.monitor("device_add virtio-blk-pci,drive=late,id=latedisk")
    status = _until(debian, "vigilctl status mnt-optional.mount", r"state:\s+running", 60)
    assert "mounted LABEL=vigil-late" in status
    assert re.search(r"^/dev/vd\w+ /mnt/optional ext4 ", debian.check("cat /proc/mounts"),
                     re.MULTILINE)
    assert debian.check("cat /mnt/optional/hello.txt").strip() == "the late disk"


def test_hostname_and_timezone(debian: Console) -> None:
    assert debian.check("hostname").strip() == "vigil-test"
    assert debian.check("date +%Z").strip() in ("CET", "CEST")  # Europe/Paris


def test_boot_record(debian: Console) -> None:
    assert "system boot" in debian.check("who -b")


def test_udev_runs_under_vigil(debian: Console) -> None:
    assert re.search(r"^udevd\s+running\s", debian.check("vigilctl status"), re.MULTILINE)
    ppid = debian.check("ps -o ppid= -C systemd-udevd").split()
    assert ppid and ppid[0] == "1"
    assert ROOT_UUID in debian.check("ls /dev/disk/by-uuid").split()


def test_loopback_is_up(debian: Console) -> None:
    assert "UP" in debian.check("ip -o link show lo").split(">")[0].split("<")[1].split(",")
    addresses = debian.check("ip -o addr show dev lo")
    assert "inet 127.0.0.1/8 " in addresses and "inet6 ::1/128 " in addresses, addresses


def test_sysctl_d_and_sysctl_conf(debian: Console) -> None:
    def value(key: str) -> str:
        return debian.check(f"cat /proc/sys/{key}").strip()
    assert value("kernel/pid_max") == "65536"          # /etc/sysctl.d masks /usr/lib's file
    assert value("fs/protected_regular") == "2"        # /usr/lib/sysctl.d/99-protect-links
    assert value("kernel/domainname") == "vigil-test-domain"
    assert value("vm/swappiness") == "23"              # /etc/sysctl.conf comes last
    problems = [line for line in debian.check("vigilctl status").splitlines()
                if line.startswith("problem: sysctl")]
    assert problems == ["problem: sysctl: /etc/sysctl.d/zz-vigil-test.conf:6: "
                        "kernel.vigil_unknown_key: unknown key"], problems


def test_debian_boot_time_files(debian: Console) -> None:
    """What Debian's initscripts made, for the daemons that expect it."""
    assert debian.check("stat -c '%a %U' /run/lock").split() == ["1777", "root"]
    assert re.search(r"^tmpfs /run/lock tmpfs ", debian.check("cat /proc/mounts"), re.M)
    assert debian.check("stat -c '%G %a' /run/utmp").split() == ["utmp", "664"]
    assert debian.check("stat -c %F /run/sendsigs.omit.d").strip() == "directory"
    links = debian.check("readlink /run/shm /var/lock /var/run /dev/fd /dev/stdin")
    assert links.split() == ["/dev/shm", "/run/lock", "/run", "/proc/self/fd", "fd/0"]
    assert debian.check("ls -A /tmp").split() == []    # the stale file of the image is gone
    # a lock file, taken by a user that is not root (mode 1777)
    debian.check("su -s /bin/sh -c 'echo $$ > /run/lock/vigil-test.lock' nobody")


def test_gettys_on_six_virtual_terminals(debian: Console) -> None:
    listing = debian.check("vigilctl list")
    for n in range(1, 7):
        assert re.search(rf"^getty@tty{n}\s+running\s", listing, re.M), listing


def _until(debian: Console, cmd: str, pattern: str, timeout: float = 150) -> str:
    """Run cmd every second until its output matches (TCG: daemons take a while)."""
    out = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = debian.run(cmd)[0]
        if re.search(pattern, out, re.M):
            return out
        time.sleep(1)
    raise AssertionError(f"{cmd!r} never matched {pattern!r}:\n{out}")


def test_remote_fs_unit_mounts_netdev_entries(debian: Console) -> None:
    # after the disk's networking service (ifup), which takes a while under TCG
    _until(debian, "vigilctl list", r"^remote-fs\s+done\s")
    assert re.search(r"^tmpfs /mnt/remote tmpfs ", debian.check("cat /proc/mounts"), re.M)
    # stage 1 left it to the unit (grep -o: the harness hides kernel log lines)
    said = debian.check("dmesg | grep -o '/mnt/remote needs the network.*'").strip()
    assert said == "/mnt/remote needs the network: the remote-fs unit mounts it"


# --- the machine's own daemons: Debian's packages, no vigil unit written for them -----------

DAEMONS = {"ssh": "/lib/systemd/system/ssh.service", "cron": "/lib/systemd/system/cron.service",
           "rsyslog": "/lib/systemd/system/rsyslog.service"}
SSH = "ssh -o StrictHostKeyChecking=no -o BatchMode=yes -i /root/.ssh/id_test root@127.0.0.1"


def _status(debian: Console, *names: str) -> dict[str, dict]:
    out = debian.run("vigilctl --json status " + " ".join(names))[0]
    return {u["name"]: u for u in json.loads(out)}


def test_sshd_cron_and_rsyslog_run_from_their_own_units(debian: Console) -> None:
    _until(debian, "vigilctl status ssh cron rsyslog | grep -c 'state: *running'", r"^3$")
    units = _status(debian, *DAEMONS)
    for name, path in DAEMONS.items():
        assert (units[name]["state"], units[name]["origin"], units[name]["path"]) == \
            ("running", "systemd", path), units[name]
        ppid = debian.check(f"ps -o ppid= -p {units[name]['pid']}").split()
        assert ppid == ["1"], name
    own = debian.run("ls /etc/vigil/units /usr/lib/vigil/units /run/vigil/units 2>&1")[0]
    assert not {f"{n}.toml" for n in DAEMONS} & set(own.split()), own


def test_the_network_is_up_from_ifupdown(debian: Console) -> None:
    assert "inet 10.0.2.15/24 " in debian.check("ip -o addr show dev ens8")
    units = _status(debian, "networking", "network.target")
    assert units["networking"]["origin"] == "systemd"
    # networking's Wants=network.target starts it, after networking: sshd waits for it
    assert units["networking"]["state"] == units["network.target"]["state"] == "running"


def test_ssh_login_inside_the_machine(debian: Console) -> None:
    out = debian.check(f"{SSH} 'echo logged in as $(id -un)'", timeout=90)
    assert "logged in as root" in out.splitlines(), out


def test_logger_lands_in_syslog(debian: Console) -> None:
    debian.check("logger -t vigil-test hello-vigil")
    line = _until(debian, "grep hello-vigil /var/log/syslog", r"vigil-test: hello-vigil$", 30)
    assert " vigil-test " in line or "vigil-test:" in line


def test_cron_ran_its_reboot_job(debian: Console) -> None:
    """/etc/cron.d/vigil-test: cron read the crontabs and ran their @reboot jobs."""
    uptime = _until(debian, "cat /run/cron-reboot-uptime", r"^\d+\.\d+$", 30)
    assert float(uptime) > 0


def test_stop_start_restart_status_of_cron(debian: Console) -> None:
    first = _status(debian, "cron")["cron"]["pid"]
    assert debian.run("vigilctl stop cron")[1] == 0
    _until(debian, "vigilctl status cron", r"state:\s+stopped", 30)
    assert debian.run("vigilctl status cron")[1] == 3        # not running
    assert debian.run("pgrep -x cron")[1] == 1               # and no cron left
    assert debian.run("vigilctl start cron")[1] == 0
    _until(debian, "vigilctl status cron", r"state:\s+running", 30)
    second = _status(debian, "cron")["cron"]["pid"]
    assert second != first and debian.check("pgrep -x cron").split() == [str(second)]
    assert debian.run("vigilctl restart cron")[1] == 0
    _until(debian, "vigilctl status cron", rf"state:\s+running(.|\n)*pid:\s+(?!{second}\n)\d+",
           30)
    third = _status(debian, "cron")["cron"]["pid"]
    assert third not in (first, second)
    assert debian.check("pgrep -x cron").split() == [str(third)]


def test_ssh_reload_runs_sshd_t_and_keeps_the_pid(debian: Console) -> None:
    """ExecReload=sshd -t, then kill -HUP $MAINPID: a broken config stops the reload at
    sshd -t (its complaint is in the unit's log), a good one reaches sshd, same pid."""
    pid = _status(debian, "ssh")["ssh"]["pid"]
    hups = "grep -c 'Received SIGHUP' /var/log/auth.log"
    before = int(debian.run(hups)[0].strip() or 0)
    debian.check("echo 'NoSuchOption yes' > /etc/ssh/sshd_config.d/zz-broken.conf")
    debian.check("vigilctl reload ssh")
    status = _until(debian, "vigilctl status ssh", r"why:\s+reload failed", 60)
    assert "exec_reload /usr/sbin/sshd -t: exit 255" in status, status
    logs = debian.check("vigilctl logs ssh")
    assert "zz-broken.conf: line 1: Bad configuration option: NoSuchOption" in logs, logs
    assert int(debian.run(hups)[0].strip() or 0) == before   # sshd was not signalled
    debian.check("rm /etc/ssh/sshd_config.d/zz-broken.conf")
    debian.check("vigilctl reload ssh")
    _until(debian, hups, rf"^{before + 1}$", 60)
    units = _status(debian, "ssh")
    assert (units["ssh"]["state"], units["ssh"]["pid"]) == ("running", pid)
    assert "logged in as root" in debian.check(f"{SSH} 'echo logged in as $(id -un)'",
                                                 timeout=90)


def test_dpkg_i_starts_the_new_daemon_under_vigil(debian: Console) -> None:
    """at's .deb, installed offline: its maintainer script's invoke-rc.d atd start goes
    through vigil's LSB hook, so atd runs as the unit from its own atd.service."""
    out = debian.check("dpkg -i /root/debs/at_*.deb", timeout=120)
    assert "Starting atd (via vigilctl): atd" in out, out
    debian.check("vigilctl reload")
    _until(debian, "vigilctl status atd", r"state:\s+running", 60)
    atd = _status(debian, "atd")["atd"]
    assert (atd["origin"], atd["path"]) == ("systemd", "/lib/systemd/system/atd.service")
    assert debian.check("pgrep -x atd").split() == [str(atd["pid"])]   # one atd: vigil's
    debian.check("echo 'touch /root/at-ran' | at now")
    _until(debian, "ls /root/at-ran", r"^/root/at-ran$", 60)


def test_check_and_what_failed_after_boot(debian: Console) -> None:
    """vigilctl check finds no error; the only failed unit is the test fstab's disk that
    is not there on purpose (mnt-missing.mount, see test_missing_disks)."""
    out, status = debian.run("vigilctl check")
    assert status == 0 and out.rstrip().endswith(" 0 errors"), out
    rows = json.loads(debian.check("vigilctl --json list"))
    failed = sorted(r["name"] for r in rows if r["state"] == "failed")
    assert failed == ["mnt-missing.mount"], [r for r in rows if r["state"] == "failed"]


def test_poweroff_keeps_what_was_written(debian: Console,
                                         root_disk: tuple[Path, Path]) -> None:
    # No sync here: flushing and unmounting on poweroff is vigil's job.
    debian.check(f"echo still-here > {MARKER}")
    debian.sendline("poweroff")
    assert debian.wait_exit(120) is Exit.POWEROFF
    # the console shows each step of stage 3, with its time
    for step in ("services stopped in", r"\] swapoff /swapfile", r"\] unmount /data",
                 r"\] remount / read-only", r"poweroff: done after"):
        assert debian.seen(step), step
    assert not debian.seen(r"error: .*remount / read-only"), debian.tail()
    root = root_disk[0]
    fsck = subprocess.run(["e2fsck", "-fn", str(root)], capture_output=True, text=True,
                          check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    cat = subprocess.run(["debugfs", "-R", f"cat {MARKER}", str(root)],
                         capture_output=True, text=True, check=False)
    assert cat.stdout.strip() == "still-here", cat.stderr


def test_missing_root_gives_a_shell_then_the_initramfs(
        images: dict[str, Path], disk_initramfs: Path, root_disk: tuple[Path, Path]) -> None:
    """No root device at all: a clear error, a shell on the console, and once it exits
    vigil goes on in the initramfs (its getty). A boot of its own, after the main one."""
    cfg = Config(images["kernel"], disk_initramfs, append="root=LABEL=no-such-root",
                 disks=list(root_disk), snapshot=True)
    with Console(cfg, log_path=OUT / "console-debian-noroot.log") as c:
        c.expect(r"root device LABEL=no-such-root did not appear within \d+ s",
                 timeout=BOOT_TIMEOUT)
        c.expect(r"# ", timeout=60)
        c.sendline("echo rescue-$((6 * 7))")
        c.expect(r"^rescue-42$", timeout=30)
        c.sendline("exit")
        c.login(timeout=BOOT_TIMEOUT)
        assert c.check("cat /proc/1/comm").strip() == "vigil"
        c.sendline("poweroff")
        assert c.wait_exit(120) is Exit.POWEROFF


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
