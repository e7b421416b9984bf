"""Faults only a machine shows: on the Debian disk (as test_debian boots it), a service fills
the root file system; vigil goes on answering, and at poweroff the disk is unmounted
clean and a file written before (and never synced by anyone but vigil) is on it."""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_debian import APPEND, BOOT_TIMEOUT, FROZEN, OUT, _disks

from vm.qemu import Config, Console, Exit

pytestmark = pytest.mark.vm

MARKER = "/root/written-before-the-disk-filled"
# Most of the space taken at once (fallocate: TCG writes slowly), the rest written by dd
# until ENOSPC; then it goes on printing, into a log that cannot be written. Its lines are
# long so that the log's last block, which may have room left, fills within seconds.
FILLER = """[service]
exec = ["/bin/sh", "-c", "fallocate -l $(( $(df -k --output=avail / | tail -1) * 1024 \
- 16777216 )) /var/tmp/bulk; dd if=/dev/zero of=/var/tmp/fill bs=1M; echo full; \
while :; do echo more $(seq 60); sleep 0.2; done"]
restart = "never"
"""
SLOW = 120  # seconds for a command while the guest's disk is busy


@pytest.fixture(scope="module")
def machine(images: dict[str, Path]) -> Iterator[tuple[Console, tuple[Path, Path]]]:
    from vm import image

    initramfs = image.build_initramfs(OUT / "initramfs-disk.cpio.gz", frozen=FROZEN)
    disks = _disks()
    cfg = Config(images["kernel"], initramfs, append=APPEND, disks=list(disks))
    with Console(cfg, log_path=OUT / "console-faults.log") as console:
        console.noise.append(r"^vigil: .*\n")
        console.login(timeout=BOOT_TIMEOUT)
        yield console, disks


def avail_kib(c: Console) -> int:
    return int(c.check("df -k --output=avail / | tail -1", SLOW).strip())


def test_a_full_root_file_system_then_poweroff(machine) -> None:
    c, disks = machine
    c.check(f"echo written-before > {MARKER}")  # no sync: getting it to disk is vigil's job
    unit = base64.b64encode(FILLER.encode()).decode()
    c.check(f"mkdir -p /etc/vigil/units; echo {unit} | base64 -d > /etc/vigil/units/filler.toml")
    assert "added: filler" in c.check("vigilctl reload | cat")
    t0 = time.monotonic()
    while avail_kib(c) > 0:
        assert time.monotonic() - t0 < 200, "the disk did not fill"
        time.sleep(2)
    # df's avail reaches 0 at ext4's reserved blocks, which root (dd, vigil's log) may
    # still fill: the log fails a little later
    shown = re.compile(r"^\s*log problem:\s+/var/log/vigil/filler\.log: No space left on device$",
                       re.M)
    while not shown.search(status := c.check("vigilctl status filler | cat", SLOW)):  # no pager
        assert time.monotonic() - t0 < 300, f"the log's problem is not shown: {status}"
        time.sleep(2)
    assert re.search(r"state:\s+running", status), status
    listing = c.check("vigilctl list | cat", SLOW)
    assert re.search(r"^udevd\s+running\s", listing, re.M), listing
    assert c.check("cat /proc/1/comm").strip() == "vigil"
    c.sendline("poweroff")
    assert c.wait_exit(180) is Exit.POWEROFF
    for step in (r"\] remount / read-only$", r"poweroff: done after"):
        assert c.seen(step), step
    root = disks[0]
    fsck = subprocess.run(["e2fsck", "-fn", str(root)], capture_output=True, text=True,
                          check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    # e2fsck -n skips the journal: a disk that was never unmounted passes it too
    header = subprocess.run(["dumpe2fs", "-h", str(root)], capture_output=True, text=True,
                            check=False).stdout
    assert "needs_recovery" not in header, "/ was read-only (its journal closed) at the end"
    assert on_disk(root, MARKER).strip() == "written-before"
    print(f"filled in {time.monotonic() - t0:.0f}s; filler.log on disk: "
          f"{on_disk(root, '/var/log/vigil/filler.log')[-200:]!r}")


def on_disk(image: Path, path: str) -> str:
    """A file's content read from the powered-off disk image."""
    return subprocess.run(["debugfs", "-R", f"cat {path}", str(image)], capture_output=True,
                          text=True, check=False).stdout
