"""Stage 3's pure parts: what to unmount, in which order; which swaps to turn off."""

from vigil.boot.mounts import active_swaps
from vigil.shutdown import unmount_order

MOUNTS = """/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
sysfs /sys sysfs rw 0 0
devtmpfs /dev devtmpfs rw 0 0
devpts /dev/pts devpts rw 0 0
tmpfs /run tmpfs rw 0 0
/dev/vdb /data ext4 rw 0 0
/dev/vdc /data/my\\040disk ext4 rw 0 0
binfmt_misc /proc/sys/fs/binfmt_misc binfmt_misc rw 0 0
"""


def test_unmount_in_reverse_order_keeping_kernel_file_systems():
    assert unmount_order(MOUNTS) == ["/data/my disk", "/data", "/run"]


def test_active_swaps():
    text = ("Filename\tType\tSize\tUsed\tPriority\n/swapfile file 65532 0 -2\n"
            "/dev/vdb2 partition 1000 0 5\n/swap\\040file   file\t\t1024\t\t0\t\t-3\n")
    assert active_swaps(text) == {"/swapfile", "/dev/vdb2", "/swap file"}
    assert active_swaps("Filename\tType\tSize\tUsed\tPriority\n") == set()
    assert active_swaps("") == set()
