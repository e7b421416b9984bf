"""A Debian disk that boots through GRUB: `python -m vm.grubdisk` (make grub-image).

Stock Debian bookworm (the test disk's packages plus Debian's kernel, initramfs-tools and
grub-pc), vigil installed from its .deb with dpkg inside the tree, and GRUB written into a
partitioned disk image the way grub-install would on a real disk, so QEMU's own firmware
(SeaBIOS) boots it: no -kernel, no loop device, no mount.

  1. base tarball (cached, keyed by packages and hooks): mmdebstrap, then the kernel's
     drivers a VM never has removed and an initramfs made with only the modules a virtio
     disk needs (MODULES=list), so GRUB reads a small one;
  2. the disk (cached, keyed by the base, the .deb and this file): a copy of the base tree;
     root without a password, a serial getty for sysvinit; GRUB's menu and the kernel's
     console on the serial line (/etc/default/grub); `dpkg -i vigil.deb`, whose postinst
     runs update-grub; GRUB's modules in /boot/grub/i386-pc and its core.img made with
     the image's own grub-mkimage; mkfs.ext4 -d; then an MBR partition table (sfdisk),
     boot.img in the MBR and core.img in the gap before the first partition.

grub-mkconfig asks grub-probe which device holds / and /boot. In a directory tree that
will only become a disk later the answer cannot be probed, so while the image is built
/usr/sbin/grub-probe is replaced by a script that gives the answers the finished disk
will give (/dev/vda1, its UUID, ext2, msdos, hd0,msdos1); the real one is put back before
the file system is made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from vm import image

REPO = Path(__file__).resolve().parents[1]
# Debian's kernel and its initramfs, GRUB for a BIOS machine, and the libraries vigil's
# package depends on (dpkg -i installs no dependency), on top of the test disk's packages
# (not its daemons: this disk has no NIC for their networking).
PACKAGES = (*image.BASE_PACKAGES, "linux-image-amd64", "initramfs-tools", "grub-pc",
            "libbz2-1.0", "libexpat1", "libffi8", "liblzma5", "libssl3", "zlib1g")
ROOT_MODULES = image.ROOT_MODULES
# mmdebstrap --customize-hook commands ("$1" is the tree), run once for the cached base.
HOOKS = (
    # The drivers a VM never has: most of the kernel package's size.
    "for d in " + " ".join(image.MODULES_LEFT_OUT) + "; do "
    'rm -rf "$1"/lib/modules/*/kernel/$d; done; '
    'for m in "$1"/lib/modules/*; do chroot "$1" depmod "${m##*/}"; done',
    # An initramfs with just what a virtio disk needs, so it is small for GRUB to read.
    'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/vigil-test.conf"; '
    f'printf "%s\\n" {" ".join(ROOT_MODULES)} >> "$1/etc/initramfs-tools/modules"; '
    'chroot "$1" update-initramfs -u -k all',
)
SECTOR = 512
PART_START = 2048            # sectors: the first partition at 1 MiB, core.img before it
ROOT_SIZE = 2 << 30          # bytes, sparse
ROOT_UUID = "5e1f0c3a-7d2b-4c9e-9a41-6b8d2e0f7c15"
DISK_ID = "0x76696731"       # the MBR's disk identifier: PARTUUID=76696731-01
GRUB_DIR = "/usr/lib/grub/i386-pc"
# What core.img holds to find and read /boot/grub on the first partition.
CORE_MODULES = ("biosdisk", "part_msdos", "ext2", "search_fs_uuid")
FAKE_PROBE = f"""#!/bin/sh
# Stands in for grub-probe while vm/grubdisk.py builds the image: the answers the
# finished disk (/dev/vda, one msdos partition, ext4) gives. Not on the disk itself.
target=
while [ $# -gt 0 ]; do
    case $1 in
        --target=*) target=${{1#--target=}} ;;
        -t|--target) target=$2; shift ;;
    esac
    shift
done
case $target in
    device) echo /dev/vda1 ;;
    fs) echo ext2 ;;
    fs_uuid) echo {ROOT_UUID} ;;
    fs_label) echo vigil-grub ;;
    partuuid) echo {DISK_ID[2:]}-01 ;;
    partmap) echo msdos ;;
    drive) echo '(hd0,msdos1)' ;;
    compatibility_hint|bios_hints) echo hd0,msdos1 ;;
    hints_string) echo '--hint-bios=hd0,msdos1' ;;
    abstraction|cryptodisk_uuid) ;;
    *) echo "grub-probe (vm/grubdisk.py): no answer for --target=$target" >&2; exit 1 ;;
esac
"""
GRUB_DEFAULTS = """
# vm/grubdisk.py: the menu and the kernel's console on the serial line, no timeout
# (the test picks the entry), every kernel message shown.
GRUB_TIMEOUT=-1
GRUB_TIMEOUT_STYLE=menu
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_CMDLINE_LINUX="console=ttyS0,115200 panic=1"
GRUB_CMDLINE_LINUX_DEFAULT=""
"""


def _log(msg: str) -> None:
    print(f"grubdisk: {msg}", file=sys.stderr, flush=True)


def disk_path() -> Path:
    return image.image_dir() / "debian-grub.img"


def _chroot(tree: Path, *argv: str) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LC_ALL": "C"}
    subprocess.run(["chroot", str(tree), *argv], check=True, env=env)


def _customize(tree: Path, deb: Path) -> None:
    """The base tree made into the test machine; GRUB as grub-install would leave it; then
    vigil's .deb installed with dpkg, whose postinst runs update-grub."""
    image.empty_root_password(tree)
    image.add_serial_getty(tree)
    (tree / "etc" / "hostname").write_text("vigil-grub\n")
    (tree / "etc" / "fstab").write_text(f"UUID={ROOT_UUID} / ext4 errors=remount-ro 0 1\n")
    with (tree / "etc" / "default" / "grub").open("a") as f:
        f.write(GRUB_DEFAULTS)
    probe = tree / "usr" / "sbin" / "grub-probe"
    real = probe.with_name("grub-probe.real")
    probe.rename(real)
    try:
        probe.write_text(FAKE_PROBE)
        probe.chmod(0o755)
        # What grub-install puts in /boot/grub, and the first grub.cfg, as a Debian
        # install has them before any other package adds an entry.
        shutil.copytree(tree / GRUB_DIR.lstrip("/"), tree / "boot" / "grub" / "i386-pc",
                        dirs_exist_ok=True)
        _chroot(tree, "update-grub")
        shutil.copy(deb, tree / "tmp" / deb.name)
        _chroot(tree, "dpkg", "-i", f"/tmp/{deb.name}")
        (tree / "tmp" / deb.name).unlink()
        _chroot(tree, "grub-mkimage", "-O", "i386-pc", "-d", GRUB_DIR,
                "-o", "/boot/grub/i386-pc/core.img", "-p", "(hd0,msdos1)/boot/grub",
                *CORE_MODULES)
    finally:
        probe.unlink(missing_ok=True)
        real.rename(probe)


def _assemble(disk: Path, tree: Path) -> None:
    """ext4 from the tree, an MBR with one partition at PART_START, boot.img in the MBR
    (its partition table kept) and core.img in the gap before the partition: the
    default places both expect (boot.img reads sector 1, core.img's first sector reads
    the rest from sector 2 on)."""
    part = disk.with_suffix(".part")
    subprocess.run(["truncate", "-s", str(ROOT_SIZE), str(part)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), "-U", ROOT_UUID,
                    "-L", "vigil-grub", str(part)], check=True)
    disk.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", str(PART_START * SECTOR + ROOT_SIZE), str(disk)],
                   check=True)
    layout = f"label: dos\nlabel-id: {DISK_ID}\nstart={PART_START}, type=83, bootable\n"
    subprocess.run(["sfdisk", "-q", str(disk)], input=layout, text=True, check=True)
    boot = (tree / GRUB_DIR.lstrip("/") / "boot.img").read_bytes()
    core = (tree / "boot" / "grub" / "i386-pc" / "core.img").read_bytes()
    if len(core) > (PART_START - 1) * SECTOR:
        raise RuntimeError(f"core.img is {len(core)} bytes: it does not fit before sector "
                           f"{PART_START}")
    with disk.open("r+b") as f:
        f.write(boot[:440])           # the code; the disk id and partition table stay
        f.seek(SECTOR)
        f.write(core)
    subprocess.run(["dd", f"if={part}", f"of={disk}", f"bs={1 << 20}",
                    f"seek={PART_START * SECTOR}", "oflag=seek_bytes", "conv=notrunc,sparse",
                    "status=none"], check=True)
    part.unlink()


def build(deb: Path, force: bool = False) -> Path:
    """The disk with this .deb installed (cached: rebuilt when the base, the .deb or this
    file change)."""
    out = disk_path()
    key = image._hash(image.base_key(PACKAGES, HOOKS).encode(), deb.read_bytes(),
                      Path(__file__).read_bytes())
    stamp = out.with_suffix(".key")
    if not force and out.is_file() and stamp.is_file() and stamp.read_text().strip() == key:
        return out
    base = image.base_tree(PACKAGES, HOOKS)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix="grub-tmp.") as tmp:
        tree = Path(tmp) / "root"
        _log("copying the base tree")
        subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(tree)], check=True)
        (tree / ".complete").unlink()
        _customize(tree, deb)
        _log(f"mkfs.ext4 -d, sfdisk, boot.img and core.img -> {out.name}")
        disk = Path(tmp) / "disk.img"
        _assemble(disk, tree)
        stamp.unlink(missing_ok=True)
        disk.replace(out)
    stamp.write_text(key + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--deb", type=Path, required=True, help="vigil's .deb (make deb)")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("grubdisk: needs root (mmdebstrap, chroot, file owners)", file=sys.stderr)
        return 1
    print(build(args.deb.resolve(), args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
