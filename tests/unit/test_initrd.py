"""The pure parts of the initramfs stage (vigil.boot.initrd) and its tree deletion."""

import os
from pathlib import Path

import pytest

from vigil import linux
from vigil.boot import initrd, mounts
from vigil.boot.cmdline import Cmdline


def plan(text: str) -> initrd.RootPlan:
    p = initrd.plan(Cmdline(text))
    assert p is not None
    return p


# --- plan: the command line -> what to mount and run -----------------------------------

def test_no_root_means_no_switch() -> None:
    assert initrd.plan(Cmdline("console=ttyS0 quiet")) is None
    assert initrd.plan(Cmdline("root= console=ttyS0")) is None


@pytest.mark.parametrize("spec", ["/dev/vda", "UUID=6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
                                  "LABEL=root", "PARTUUID=1234abcd-01", "254:0"])
def test_root_spec_is_kept_as_given(spec: str) -> None:
    assert plan(f"root={spec}").spec == spec


def test_defaults_read_only_vigil_thirty_seconds() -> None:
    p = plan("root=/dev/vda")
    assert p.flags & linux.MS_RDONLY
    assert p.init == "/sbin/vigil"
    assert p.fstype is None
    assert p.data == ""
    assert p.timeout == initrd.ROOT_TIMEOUT


def test_rw_and_ro() -> None:
    assert not plan("root=/dev/vda rw").flags & linux.MS_RDONLY
    assert plan("root=/dev/vda ro").flags & linux.MS_RDONLY
    assert plan("root=/dev/vda rw ro").flags & linux.MS_RDONLY  # both: the safe one


def test_init_and_fstype() -> None:
    p = plan("root=LABEL=x init=/lib/systemd/systemd rootfstype=ext4")
    assert (p.init, p.fstype) == ("/lib/systemd/systemd", "ext4")


def test_rootflags_split_into_flags_and_data() -> None:
    p = plan("root=/dev/vda rootflags=noatime,nosuid,data=journal,commit=30")
    assert p.flags & linux.MS_NOATIME and p.flags & linux.MS_NOSUID
    assert p.flags & linux.MS_RDONLY
    assert p.data == "data=journal,commit=30"


def test_rootflags_rw_is_overridden_by_the_command_line() -> None:
    # The kernel's rule too: rootflags carries file system options, ro/rw decide.
    assert plan("root=/dev/vda rootflags=rw").flags & linux.MS_RDONLY


def test_rootwait_and_rootdelay() -> None:
    assert plan("root=/dev/vda rootwait").timeout == float("inf")
    assert plan("root=/dev/vda rootdelay=90").timeout == 90
    assert plan("root=/dev/vda rootdelay=5").timeout == initrd.ROOT_TIMEOUT
    assert plan("root=/dev/vda rootdelay=x").timeout == initrd.ROOT_TIMEOUT


# --- where we are ---------------------------------------------------------------------

def test_initramfs_detected_from_mounts() -> None:
    assert initrd.root_is_initramfs("rootfs / rootfs rw 0 0\nproc /proc proc rw 0 0\n")
    assert initrd.root_is_initramfs("none / tmpfs rw 0 0\n")
    assert not initrd.root_is_initramfs("/dev/vda / ext4 rw 0 0\nproc /proc proc rw 0 0\n")
    # The last mount on / is the one in effect.
    assert not initrd.root_is_initramfs("rootfs / rootfs rw 0 0\n/dev/vda / ext4 ro 0 0\n")
    assert not initrd.root_is_initramfs("")


# --- small parsers --------------------------------------------------------------------

def test_module_list() -> None:
    text = "virtio_pci\n# the disk\nvirtio_blk  # inline\n\n  ext4 \n"
    assert initrd.parse_module_list(text) == ["virtio_pci", "virtio_blk", "ext4"]
    assert initrd.parse_module_list("") == []


def test_block_filesystems_skip_nodev() -> None:
    text = "nodev\tsysfs\nnodev\ttmpfs\n\text3\n\text2\n\text4\nnodev\tproc\n\tvfat\n"
    assert mounts.block_filesystems(text) == ["ext3", "ext2", "ext4", "vfat"]
    assert mounts.block_filesystems("") == []


def test_init_environment_drops_the_bootloaders_variables() -> None:
    env = {"HOME": "/", "TERM": "linux", "_PYI_ARCHIVE_FILE": "/x", "_MEIPASS2": "/y",
           "LD_LIBRARY_PATH": "/usr/lib/vigil/_internal", "BOOT_IMAGE": "vmlinuz"}
    assert initrd.init_environment(env) == {"HOME": "/", "TERM": "linux",
                                            "BOOT_IMAGE": "vmlinuz"}
    env = {"LD_LIBRARY_PATH": "/bundle", "LD_LIBRARY_PATH_ORIG": "/opt/lib"}
    assert initrd.init_environment(env) == {"LD_LIBRARY_PATH": "/opt/lib"}


def test_choose_init_falls_back_like_the_kernel() -> None:
    there = {"/sbin/init", "/bin/sh"}
    assert initrd.choose_init("/sbin/vigil", there.__contains__) == "/sbin/init"
    assert initrd.choose_init("/bin/sh", there.__contains__) == "/bin/sh"
    assert initrd.choose_init("/sbin/vigil", {"/sbin/vigil"}.__contains__) == "/sbin/vigil"
    assert initrd.choose_init("/sbin/vigil", set().__contains__) is None


# --- deleting the initramfs ------------------------------------------------------------

def test_delete_tree_keeps_the_new_root(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/vigil").mkdir(parents=True)
    (tmp_path / "usr/lib/vigil/vigil").write_text("x")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root")
    (tmp_path / "bin").symlink_to("usr/bin")  # a dangling link is deleted, not followed
    (tmp_path / "newroot/etc").mkdir(parents=True)
    (tmp_path / "newroot/etc/fstab").write_text("keep")
    initrd.delete_tree(str(tmp_path), os.stat(tmp_path).st_dev, str(tmp_path / "newroot"))
    assert sorted(os.listdir(tmp_path)) == ["newroot"]
    assert (tmp_path / "newroot/etc/fstab").read_text() == "keep"


def test_delete_tree_stays_on_its_device(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/file").write_text("x")
    # A device number that is not the tree's: as if everything were another mount.
    initrd.delete_tree(str(tmp_path), os.stat(tmp_path).st_dev + 1, str(tmp_path / "n"))
    assert (tmp_path / "a/file").exists()


def test_delete_tree_does_not_follow_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link").symlink_to(outside)
    initrd.delete_tree(str(tree), os.stat(tree).st_dev, str(tree / "newroot"))
    assert (outside / "precious").exists()
    assert not (tree / "link").is_symlink()


# --- what the console says when the root cannot be used (the shell is not started) ---------

@pytest.fixture
def no_shell(monkeypatch) -> list[str]:
    shells: list[str] = []
    monkeypatch.setattr(initrd, "rescue_shell", shells.append)
    monkeypatch.setattr(initrd, "read_text", lambda path, size=-1:
                        "rootfs / rootfs rw 0 0\n" if path == "/proc/self/mounts" else "")
    return shells


def test_missing_root_device_gives_a_shell(monkeypatch, no_shell) -> None:
    monkeypatch.setattr(initrd, "find_root", lambda spec, timeout: None)
    problems: list[str] = []
    initrd.switch_root(Cmdline("root=LABEL=gone"), problems)
    assert problems == ["initramfs: root device LABEL=gone did not appear within 30 s"]
    assert no_shell == problems


def test_unmountable_root_and_missing_init(monkeypatch, no_shell, tmp_path) -> None:
    # mount(2) is faked: a unit test cannot mount anything.
    monkeypatch.setattr(initrd, "find_root", lambda spec, timeout: "/dev/vda")
    monkeypatch.setattr(initrd, "NEWROOT", str(tmp_path / "newroot"))

    def refuse(*args):
        raise OSError(5, "mount: Input/output error")
    monkeypatch.setattr(initrd.linux, "mount", refuse)
    problems: list[str] = []
    initrd.switch_root(Cmdline("root=/dev/vda rootfstype=ext4"), problems)
    assert problems == [f"initramfs: cannot mount /dev/vda (root=/dev/vda) on {tmp_path}"
                        "/newroot: mount: Input/output error"]
    unmounted: list[str] = []
    monkeypatch.setattr(initrd.linux, "mount", lambda *args: None)
    monkeypatch.setattr(initrd.linux, "umount", lambda target, flags=0: unmounted.append(target))
    monkeypatch.setattr(initrd, "FALLBACK_INITS", ())
    problems.clear()
    initrd.switch_root(Cmdline("root=/dev/vda rootfstype=ext4"), problems)
    assert problems == ["initramfs: /sbin/vigil is not on /dev/vda (nor any fallback init)"]
    assert unmounted == [f"{tmp_path}/newroot"] and no_shell[-1] == problems[0]
