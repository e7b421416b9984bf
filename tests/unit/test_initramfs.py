"""The initramfs builder's choice of kernel modules (initramfs/build.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # initramfs/ is a plain directory
from initramfs.build import module_closure  # noqa: E402

DEP = """\
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/lib/crc16.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/fs/jbd2/jbd2.ko.xz: kernel/lib/crc16.ko.xz
kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio-ring.ko.xz
kernel/drivers/virtio/virtio-ring.ko.xz:
kernel/drivers/net/dummy.ko.xz:
"""


def test_module_closure_brings_each_dependency_once(tmp_path):
    (tmp_path / "modules.dep").write_text(DEP)
    got = module_closure(tmp_path, ["ext4", "virtio-blk"])
    assert sorted(got) == sorted([
        "kernel/fs/ext4/ext4.ko.xz", "kernel/lib/crc16.ko.xz", "kernel/fs/mbcache.ko.xz",
        "kernel/fs/jbd2/jbd2.ko.xz", "kernel/drivers/block/virtio_blk.ko.xz",
        "kernel/drivers/virtio/virtio-ring.ko.xz"])
    assert len(got) == len(set(got))
    assert module_closure(tmp_path, []) == []


def test_module_closure_unknown_name(tmp_path):
    (tmp_path / "modules.dep").write_text(DEP)
    with pytest.raises(KeyError, match="no module btrfs in"):
        module_closure(tmp_path, ["btrfs"])
