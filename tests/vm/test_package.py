"""vigil's .deb on stock Debian, booted by GRUB through QEMU's own firmware (SeaBIOS).

vm/grubdisk.py builds the disk: Debian bookworm with its kernel, initramfs-tools, grub-pc,
sysvinit and systemd, vigil installed with `dpkg -i` (its postinst ran update-grub, which
ran /etc/grub.d/42_vigil). One QEMU run, two boots: the menu entry "Debian GNU/Linux,
with vigil" boots vigil; sysvinit's own /sbin/reboot brings the machine down through
/run/initctl; the default entry then boots the image's own init (sysvinit), whose
poweroff ends the run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vm.qemu import Config, Console, Exit

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "test"
DOWN = "\x1b[B"     # the terminal's down arrow, as GRUB's serial terminal reads it
BOOT_TIMEOUT = 300
SVG = "{http://www.w3.org/2000/svg}"
# Stage 1's steps (init/vigil/boot/system.py), each a row of the plot.
STEPS = ["config: vigil.toml", "modules: loading modules", "modules: static device nodes",
         "fstab: reading fstab",
         "fstab: remounting /", "fstab: mounting", "swap: swap",
         "system: Debian's boot-time files", "sysctl: sysctl", "network: loopback",
         "system: settings", "udev: udev units", "fstab: remote-fs unit", "fstab: mount units"]


@pytest.fixture(scope="module")
def disk() -> Path:
    if os.geteuid() != 0:
        pytest.skip("the disk is built as root (mmdebstrap, chroot, mkfs.ext4 -d)")
    from vm import grubdisk
    subprocess.run(["make", "-s", "-C", str(REPO), "deb"], check=True)
    deb = REPO / "build" / f"vigil_{_version()}_amd64.deb"
    built = grubdisk.build(deb)
    OUT.mkdir(parents=True, exist_ok=True)
    copy = OUT / "debian-grub.img"
    shutil.copyfile(built, copy)
    return copy


def _version() -> str:
    from vigil import VERSION
    return VERSION


def grub_cfg(disk: Path) -> str:
    return subprocess.run(["debugfs", "-R", "cat /boot/grub/grub.cfg",
                           f"{disk}?offset={1 << 20}"], capture_output=True, text=True,
                          check=True).stdout


def top_entries(cfg: str) -> list[str]:
    return re.findall(r"^(?:menuentry|submenu) '([^']*)'", cfg, re.M)


def linux_line(cfg: str, title: str) -> str:
    block = cfg[cfg.index(f"menuentry '{title}'"):]
    return re.search(r"^\s*linux\s+(.*)$", block, re.M).group(1).strip()


def choose(c: Console, entries: list[str], title: str) -> None:
    """At GRUB's menu, move the highlight to `title` and boot it."""
    start = c.pos
    c.expect(re.escape(entries[-1]), timeout=BOOT_TIMEOUT)   # the whole menu is drawn
    highlighted = r"\*" + re.escape(title) + " "              # GRUB marks the highlight
    moves = entries.index(title)
    for _ in range(moves):
        c.send(DOWN)
    if moves:
        c.expect(highlighted, timeout=30)
    else:
        assert re.search(highlighted, c.text[start:]), c.tail()
    c.send("\r")


def test_grub_menu_boots_vigil_then_the_installed_init(disk: Path) -> None:
    cfg = grub_cfg(disk)
    entries = top_entries(cfg)
    vigil_entry, default_entry = "Debian GNU/Linux, with vigil", entries[0]
    # postinst's update-grub ran 42_vigil: the default entry's kernel and command line,
    # and init=/sbin/vigil
    assert vigil_entry in entries and default_entry == "Debian GNU/Linux"
    assert linux_line(cfg, vigil_entry).split() == \
        [*linux_line(cfg, default_entry).split(), "init=/sbin/vigil"]
    cfg_ = Config(None, None, disks=[disk], exit_on_reboot=False)
    with Console(cfg_, log_path=OUT / "console-grub.log") as c:
        c.noise.append(r"^vigil: .*\n")
        choose(c, entries, vigil_entry)
        c.login(timeout=BOOT_TIMEOUT)
        assert c.check("readlink /proc/1/exe").strip() == "/usr/lib/vigil/vigil"
        assert c.check("tr '\\0' ' ' < /proc/1/cmdline").split()[0] == "/sbin/vigil"
        assert c.check("dpkg-query -W -f '${Status}' vigil") == "install ok installed"
        # the plot: one bar per unit and boot step
        c.check("vigilctl analyze plot > /tmp/boot.svg")
        plot = c.check("cat /tmp/boot.svg", timeout=60)
        (OUT / "boot.svg").write_text(plot)   # for make bench-plot PLOT_SVG=build/test/boot.svg
        svg = ET.fromstring(plot)
        rows = {g.get("data-name"): g for g in svg.iter(f"{SVG}g") if g.get("class") == "row"}
        for g in rows.values():
            assert len([r for r in g.iter(f"{SVG}rect") if r.get("class") == "bar"]) == 1
        steps = [n for n, g in rows.items() if g.get("data-kind") == "boot"]
        assert steps == STEPS
        listing = c.check("vigilctl --no-pager list").splitlines()[1:]
        started = {line.split()[0] for line in listing if line.split()[1] != "stopped"}
        assert started and started <= set(rows), (started, set(rows))
        chain = c.check("vigilctl --no-pager analyze critical-chain")
        assert "@" in chain.splitlines()[3], chain
        # sysvinit's own reboot (halt -> shutdown -> init 6 -> /run/initctl) acts on vigil
        assert c.check("readlink -f /sbin/reboot").strip() == "/usr/sbin/halt"
        c.sendline("reboot")
        c.expect(r"/run/initctl: run level 6: reboot", timeout=60)
        c.expect(r"reboot: done after", timeout=120)
        # the second boot: the default entry, the image's own init
        choose(c, entries, default_entry)
        c.login(timeout=BOOT_TIMEOUT)
        init = c.check("readlink /proc/1/exe").strip()
        assert init == c.check("readlink -f /sbin/init").strip() == "/usr/sbin/init"
        assert "vigil" not in c.check("cat /proc/1/comm")
        c.sendline("poweroff")
        assert c.wait_exit(180) is Exit.POWEROFF
