"""Build the Debian test disks: `python -m vm.image` (or `make image`).

Three layers, each cached in $VIGIL_CACHE/image and rebuilt only when its inputs change:
  1. base tarball: mmdebstrap of bookworm with the packages below (the slow, downloading
     part), keyed by suite, variant and package list;
  2. base tree: that tarball unpacked once, never modified afterwards;
  3. the disks: a copy of the base tree + the test overlay (tests/vm/debian/rootfs) +
     `make install DESTDIR=...` (the frozen vigil) + a swap file + root's SSH key pair +
     a .deb left to install, written with `mkfs.ext4 -d` (no loop mount, no root file
     system of our own touched); and a small second disk for /data. Keyed by everything
     that went into them, and named by that key, so that branches which build different
     disks into the same cache do not overwrite each other's.

The SSH key pair (ssh-keygen, once) and the .deb (`apt-get download`, once) are kept in
the cache too, so a rebuilt disk has the same ones. mmdebstrap gets no mirror argument and
`apt-get download` none either: apt's sources of this host decide where packages come
from. The disks are for testing only: root logs in without a password, and the private
half of the key that logs in as root is on the disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vm.kernel import cache_dir
from vm.kernel import fetch as fetch_kernel

REPO = Path(__file__).resolve().parents[1]
OVERLAY = REPO / "tests" / "vm" / "debian" / "rootfs"
DATA_FILES = REPO / "tests" / "vm" / "debian" / "data"
FROZEN = REPO / "build" / "frozen" / "vigil"

SUITE = "bookworm"
VARIANT = "minbase"
# udev and kmod for the devices, agetty (util-linux) + login for the console, procps and
# iproute2 for the tests; sysvinit-core and systemd (without systemd-sysv, so /sbin/init
# stays sysvinit's) are the peers the benchmark boots the same disk with. The daemons
# come up from their own units and scripts (no vigil unit is written for them): sshd,
# cron and rsyslog, and ifupdown's networking for the NIC (NIC_ARGS). rsyslog has no
# init.d script of its own in bookworm: orphan-sysvinit-scripts gives sysvinit one, as
# on any sysvinit machine (sysvinit-core recommends it).
BASE_PACKAGES = ("udev", "util-linux", "login", "passwd", "procps", "kmod", "iproute2",
                 "e2fsprogs", "tzdata", "sysvinit-core", "systemd")
DAEMONS = ("openssh-server", "cron", "rsyslog", "ifupdown", "orphan-sysvinit-scripts")
PACKAGES = (*BASE_PACKAGES, *DAEMONS)
# A small daemon left for the tests to install offline (dpkg -i, then vigilctl reload):
# at's atd has its own systemd unit and init.d script, and needs nothing the disk lacks
# (libc, PAM, libselinux, lsb-base), so dpkg -i works without a network.
LATER_DEB = "at"
DEBS_DIR = "/root/debs"
SSH_KEY = "/root/.ssh/id_test"   # root's private key on the disk; its .pub is authorized
# The guest's NIC (user-mode network): the disk's /etc/network/interfaces configures it
# by the name udev gives a virtio NIC in this PCI slot, with slirp's fixed guest address.
NIC_SLOT = 8
NIC_NAME = f"ens{NIC_SLOT}"
GUEST_IP = "10.0.2.15"
# What the initramfs loads to mount the root disk: the Debian kernel has these as modules.
# ext4 needs a crc32c (its softdep); the generic one, since crc32c_intel refuses a CPU
# without SSE 4.2, as QEMU's emulated one.
ROOT_MODULES = ("virtio_pci", "virtio_blk", "ext4", "crc32c_generic")
ROOT_SIZE = "1G"      # sparse: only the blocks in use take space on the host
DATA_SIZE = "16M"
SWAP_MIB = 32
MODULES_LEFT_OUT = ("sound", "drivers/gpu", "drivers/media", "drivers/net/wireless",
                    "drivers/infiniband", "drivers/staging")
SERIAL_GETTY = "T0:23:respawn:/sbin/getty -L ttyS0 115200 vt100\n"  # for sysvinit's inittab


@dataclass(frozen=True)
class Disks:
    root: Path
    data: Path


def _hash(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little") + p)
    return h.hexdigest()[:16]


def _tree_hash(root: Path) -> bytes:
    """Names, sizes, modes and contents of a tree's files, in a stable order."""
    h = hashlib.sha256()
    if not root.exists():
        return b""
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            p = Path(dirpath) / name
            h.update(str(p.relative_to(root)).encode() + b"\0")
            if p.is_symlink():
                h.update(os.readlink(p).encode())
            else:
                h.update(oct(p.stat().st_mode).encode() + p.read_bytes())
    return h.digest()


def image_dir() -> Path:
    return cache_dir() / "image"


def _log(msg: str) -> None:
    print(f"image: {msg}", file=sys.stderr, flush=True)


# --- layer 1 and 2: the Debian base ----------------------------------------------------

def base_key(packages: tuple[str, ...] = PACKAGES, hooks: tuple[str, ...] = ()) -> str:
    if not hooks:  # the key the cached tarballs of the first disk were made with
        return _hash(json.dumps([SUITE, VARIANT, sorted(packages)]).encode())
    return _hash(json.dumps([SUITE, VARIANT, sorted(packages), list(hooks)]).encode())


def base_tarball(packages: tuple[str, ...] = PACKAGES, hooks: tuple[str, ...] = ()) -> Path:
    """The mmdebstrap tarball, made once per package list (and customize hooks: mmdebstrap's
    --customize-hook, shell commands run on the finished tree, "$1" being its path)."""
    out = image_dir() / f"{SUITE}-{base_key(packages, hooks)}.tar"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.tar")  # mmdebstrap picks the format by suffix
    _log(f"mmdebstrap {SUITE} ({VARIANT} + {len(packages)} packages) -> {out}")
    subprocess.run(
        ["mmdebstrap", f"--variant={VARIANT}", "--format=tar", "--include=" + ",".join(packages),
         *(f"--customize-hook={hook}" for hook in hooks),
         # Documentation and locales are most of the tree's size and none of the test.
         "--dpkgopt=path-exclude=/usr/share/man/*",
         "--dpkgopt=path-exclude=/usr/share/locale/*",
         "--dpkgopt=path-exclude=/usr/share/doc/*",
         "--dpkgopt=path-include=/usr/share/doc/*/copyright",
         SUITE, str(tmp)],
        check=True,
    )
    tmp.rename(out)
    return out


def base_tree(packages: tuple[str, ...] = PACKAGES, hooks: tuple[str, ...] = ()) -> Path:
    """The tarball unpacked (as root, so owners and modes stay); read-only by convention."""
    tar = base_tarball(packages, hooks)
    tree = image_dir() / f"{SUITE}-{base_key(packages, hooks)}.tree"
    if (tree / ".complete").is_file():
        return tree
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    _log(f"unpacking {tar.name}")
    subprocess.run(["tar", "-xpf", str(tar), "--numeric-owner", "-C", str(tree)], check=True)
    (tree / ".complete").touch()
    return tree


# --- layer 3: the test disks ---------------------------------------------------------------

def fstab_labels(text: str) -> tuple[str, str]:
    """(UUID of /, LABEL of /data) as the overlay's fstab names them: the disks get these."""
    root_uuid = data_label = ""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith("#"):
            continue
        if fields[1] == "/" and fields[0].startswith("UUID="):
            root_uuid = fields[0].removeprefix("UUID=")
        elif fields[1] == "/data" and fields[0].startswith("LABEL="):
            data_label = fields[0].removeprefix("LABEL=")
    if not (root_uuid and data_label):
        raise ValueError("the test fstab must mount / by UUID= and /data by LABEL=")
    return root_uuid, data_label


def nic_args(forward: dict[int, int] | None = None) -> list[str]:
    """QEMU arguments for the NIC the disk expects; forward: host port -> guest port
    (on 127.0.0.1 of the host)."""
    fwd = "".join(f",hostfwd=tcp:127.0.0.1:{h}-:{g}" for h, g in (forward or {}).items())
    return ["-netdev", f"user,id=net0{fwd}",
            "-device", f"virtio-net-pci,netdev=net0,addr={NIC_SLOT:#x}"]


def ssh_key() -> Path:
    """The test key pair (ed25519, no passphrase), made once and kept in the cache."""
    key = image_dir() / "ssh" / "id_test"
    if not key.is_file() or not key.with_suffix(".pub").is_file():
        key.parent.mkdir(parents=True, exist_ok=True)
        for old in (key, key.with_suffix(".pub")):
            old.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vigil-test",
                        "-f", str(key)], check=True)
    return key


def later_deb() -> Path:
    """LATER_DEB's .deb, downloaded once with the host's apt sources."""
    into = image_dir() / "debs"
    found = sorted(into.glob(f"{LATER_DEB}_*.deb"))
    if found:
        return found[-1]
    into.mkdir(parents=True, exist_ok=True)
    _log(f"apt-get download {LATER_DEB}")
    # Downloaded as root into root's cache: apt's _apt user could not write there.
    subprocess.run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download",
                    LATER_DEB], cwd=into, check=True)
    return sorted(into.glob(f"{LATER_DEB}_*.deb"))[-1]


def disks_key() -> str:
    key = ssh_key()
    return _hash(base_key().encode(), fetch_kernel().version.encode(),
                 _tree_hash(OVERLAY), _tree_hash(DATA_FILES),
                 _tree_hash(FROZEN), _tree_hash(REPO / "units"),
                 key.read_bytes(), later_deb().read_bytes(),
                 Path(__file__).read_bytes())


def _customize(tree: Path) -> None:
    """The test content: overlay files, an empty root password, a serial getty for
    sysvinit, a swap file, a stale file in /tmp, the frozen vigil."""
    subprocess.run(["cp", "-a", "--no-preserve=ownership", f"{OVERLAY}/.", str(tree)],
                   check=True)
    empty_root_password(tree)
    add_serial_getty(tree)
    zone = (tree / "etc" / "timezone").read_text().strip()
    localtime = tree / "etc" / "localtime"
    localtime.unlink(missing_ok=True)
    localtime.symlink_to(f"/usr/share/zoneinfo/{zone}")
    (tree / "data").mkdir(exist_ok=True)
    # Left over from "the last boot": the boot cleans /tmp (Debian's TMPTIME=0).
    (tree / "tmp" / "vigil-stale").write_text("from the last boot\n")
    # mkfs.ext4 -d stores zero blocks as holes, and the kernel refuses a swap file with
    # holes: fill it with non-zero bytes before mkswap writes its header.
    swap = tree / "swapfile"
    with swap.open("wb") as f:
        block = b"\xa5" * (1 << 20)
        for _ in range(SWAP_MIB):
            f.write(block)
    swap.chmod(0o600)
    subprocess.run(["mkswap", "-q", str(swap)], check=True)
    _add_modules(tree)
    _add_ssh_key(tree)
    debs = tree / DEBS_DIR.lstrip("/")
    debs.mkdir(parents=True, exist_ok=True)
    shutil.copy(later_deb(), debs)
    subprocess.run(["make", "-s", "-C", str(REPO), "install", f"DESTDIR={tree}"], check=True)


def empty_root_password(tree: Path) -> None:
    """Testing only: an empty password field lets root log in without one."""
    shadow = tree / "etc" / "shadow"
    lines = shadow.read_text().splitlines()
    shadow.write_text("".join(
        ":".join([f[0], "", *f[2:]]) + "\n" if f[0] == "root" else line + "\n"
        for line in lines for f in [line.split(":")]))


def add_serial_getty(tree: Path) -> None:
    """A getty on the serial console for sysvinit (vigil starts one on each console=)."""
    inittab = tree / "etc" / "inittab"
    if inittab.is_file() and SERIAL_GETTY not in inittab.read_text():
        with inittab.open("a") as f:
            f.write(SERIAL_GETTY)


def _add_ssh_key(tree: Path) -> None:
    """root's key pair on the disk, its public half authorized: ssh to root@127.0.0.1
    inside the guest logs in with it."""
    key = ssh_key()
    ssh = tree / Path(SSH_KEY).parent.relative_to("/")
    ssh.mkdir(mode=0o700, exist_ok=True)
    ssh.chmod(0o700)
    private = ssh / Path(SSH_KEY).name
    shutil.copyfile(key, private)
    private.chmod(0o600)
    shutil.copyfile(key.with_suffix(".pub"), private.with_suffix(".pub"))
    authorized = ssh / "authorized_keys"
    authorized.write_bytes(key.with_suffix(".pub").read_bytes())
    authorized.chmod(0o600)


def _add_modules(tree: Path) -> None:
    """The test kernel's modules, as the kernel package would install them (the disk has
    no kernel package: QEMU boots vm/kernel.py's). Hardware a VM never has is left out."""
    k = fetch_kernel()
    dest = tree / "usr" / "lib" / "modules" / k.version
    skip = {k.modules / "kernel" / d for d in MODULES_LEFT_OUT}
    shutil.copytree(k.modules, dest, symlinks=True,
                    ignore=lambda d, names: [n for n in names if Path(d) / n in skip])
    # modules.dep must describe what is there (and only that).
    subprocess.run(["depmod", "-b", str(tree), k.version], check=True)


def _mkfs(image: Path, tree: Path, size: str, *args: str) -> None:
    image.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), *args, str(image)], check=True)


def build(force: bool = False) -> Disks:
    out = image_dir()
    key = disks_key()
    disks = Disks(out / f"disks-{key}" / "root.img", out / f"disks-{key}" / "data.img")
    if not force and disks.root.is_file() and disks.data.is_file():
        disks.root.parent.touch()   # recently used: kept by _prune
        return disks
    base = base_tree()
    root_uuid, data_label = fstab_labels((OVERLAY / "etc" / "fstab").read_text())
    with tempfile.TemporaryDirectory(dir=out, prefix="disks-tmp.") as tmp:
        work = Path(tmp)
        tree = work / "root"
        _log("copying the base tree")
        # A copy, so the cached tree stays as mmdebstrap made it (and the next build is fast).
        subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(tree)], check=True)
        (tree / ".complete").unlink()
        _customize(tree)
        _log(f"mkfs.ext4 -d -> {disks.root}")
        made = work / "disks"
        made.mkdir()
        _mkfs(made / "root.img", tree, ROOT_SIZE, "-U", root_uuid, "-L", "vigil-root")
        _mkfs(made / "data.img", DATA_FILES, DATA_SIZE, "-L", data_label)
        shutil.rmtree(disks.root.parent, ignore_errors=True)   # a half-made one (--force)
        made.rename(disks.root.parent)   # both disks appear at once
    _prune(out)
    return disks


KEEP_DISKS = 4   # the most recently used sets of disks stay in the cache


def _prune(out: Path) -> None:
    """Sets of disks nobody used lately go (each is a few hundred MB); a test that still
    boots one has its own copy, and QEMU keeps a removed file open."""
    sets = sorted((d for d in out.glob("disks-" + "[0-9a-f]" * 16) if d.is_dir()),
                  key=lambda d: d.stat().st_mtime, reverse=True)
    for old in sets[KEEP_DISKS:]:
        shutil.rmtree(old, ignore_errors=True)


def build_initramfs(out: Path, frozen: Path = FROZEN) -> Path:
    """vigil's initramfs plus the modules the root disk needs (vigil.boot.initrd loads them)."""
    from initramfs import build as initramfs_build

    return initramfs_build.build(out, init="vigil", frozen=frozen, modules=list(ROOT_MODULES),
                                 modules_dir=fetch_kernel().modules)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--force", action="store_true", help="rebuild the disks (not the base)")
    p.add_argument("--initramfs", type=Path, metavar="OUT",
                   help="only write the disk boot's initramfs to OUT")
    args = p.parse_args(argv)
    if args.initramfs:
        print(build_initramfs(args.initramfs))
        return 0
    if os.geteuid() != 0:
        print("image: needs root (mmdebstrap, and file owners for mkfs.ext4 -d)",
              file=sys.stderr)
        return 1
    disks = build(args.force)
    print(f"root {disks.root}\ndata {disks.data}")   # what was built, as initramfs.build does
    return 0


if __name__ == "__main__":
    sys.exit(main())
