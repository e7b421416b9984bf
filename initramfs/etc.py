"""The text of the image's /etc files: pure functions, no I/O.

The image is for trying and testing, so root has no password: the shadow field is empty,
and busybox login (what agetty runs) then lets root in without asking.
"""

from __future__ import annotations

PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
SHADOW = "root::19000:0:99999:7:::\n"
GROUP = "root:x:0:\ntty:x:5:\n"
SHELLS = "/bin/sh\n/bin/ash\n"
HOSTNAME = "vigil\n"
# busybox-static's ash runs its own applet for a name it knows (poweroff, reboot, halt)
# before searching PATH, and those applets signal PID 1 the busybox-init way. Under vigil
# these functions send the names to vigil's client, as a path would.
VIGIL_PROFILE = "".join(
    f'{name}() {{ /sbin/{name} "$@"; }}\n' for name in ("poweroff", "reboot", "halt")
)


def profile(init: str) -> str:
    text = 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1="\\u@\\h:\\w\\$ "\n'
    return text + (VIGIL_PROFILE if init == "vigil" else "")
ISSUE = "vigil test image \\l\n\n"


def inittab(console: str = "ttyS0") -> str:
    """busybox init's table: mount what vigil would mount itself, one getty on `console`."""
    return (
        "::sysinit:/bin/mount -t proc proc /proc\n"
        "::sysinit:/bin/hostname -F /etc/hostname\n"
        "::sysinit:/bin/mount -t sysfs sysfs /sys\n"
        "::sysinit:/bin/mount -t devtmpfs devtmpfs /dev\n"
        "::sysinit:/bin/mkdir -p /dev/pts /dev/shm\n"
        "::sysinit:/bin/mount -t devpts devpts /dev/pts\n"
        "::sysinit:/bin/mount -t tmpfs tmpfs /dev/shm\n"
        "::sysinit:/bin/mount -t tmpfs tmpfs /run\n"
        f"::respawn:/sbin/agetty -L {console} 115200 vt100\n"
        "::ctrlaltdel:/sbin/reboot\n"
        "::shutdown:/bin/sync\n"
    )
