"""The .deb as a user gets it: built by `make deb` with dpkg-deb, checked by lintian,
installed with dpkg into a scratch Debian root (a copy of the GRUB disk's base tree:
stock bookworm with grub-pc and sysvinit, no Python), then removed and purged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

pytestmark = pytest.mark.deb

MAN_PAGES = ["man8/vigil.8.gz", "man8/vigilctl.8.gz", "man5/vigil.unit.5.gz",
             "man5/vigil.toml.5.gz"]
# Changed by dpkg itself and by update-grub, whoever installs what.
NOT_OURS = ("var/lib/dpkg/", "var/log/", "var/cache/", "boot/grub/grub.cfg")


def _version() -> str:
    from vigil import VERSION
    return VERSION


@pytest.fixture(scope="module")
def deb() -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    subprocess.run(["make", "-s", "-C", str(REPO), "deb"], check=True)
    return REPO / "build" / f"vigil_{_version()}_amd64.deb"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A copy of the cached base tree (never the cache itself) with GRUB set up as
    grub-install and a first update-grub leave it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: chroot, and dpkg owning files as root")
    from vm import grubdisk, image
    base = image.base_tree(grubdisk.PACKAGES, grubdisk.HOOKS)
    tree = tmp_path_factory.mktemp("deb") / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(tree)], check=True)
    (tree / ".complete").unlink()
    probe = tree / "usr" / "sbin" / "grub-probe"
    probe.write_text(grubdisk.FAKE_PROBE)   # this copy is never a disk: answers suffice
    return tree


def chroot(tree: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C",
           "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["chroot", str(tree), *argv], capture_output=True, text=True,
                          env=env, check=check)


def snapshot(tree: Path) -> set[str]:
    out = set()
    for dirpath, dirs, files in os.walk(tree):
        for name in dirs + files:
            rel = str((Path(dirpath) / name).relative_to(tree))
            if not rel.startswith(NOT_OURS):
                out.add(rel)
    return out


def test_lintian_finds_no_error(deb: Path) -> None:
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed (make apt installs it)")
    r = subprocess.run(["lintian", "--tag-display-limit", "0", str(deb)],
                       capture_output=True, text=True)
    errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
    assert errors == [], r.stdout
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_metadata(deb: Path) -> None:
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Architecture",
                             "Depends"], capture_output=True, text=True, check=True).stdout
    assert "Package: vigil\n" in fields and "Architecture: amd64\n" in fields
    assert "libc6" in fields and "python" not in fields.lower()   # no Python needed
    conffiles = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"],
                               capture_output=True, text=True, check=True).stdout
    assert conffiles.split() == ["/etc/vigil/vigil.toml", "/etc/grub.d/42_vigil"]
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    for name in ("poweroff", "reboot", "halt", "shutdown", "telinit", "runlevel"):
        assert f"/{name} " not in listing and f"/{name}\n" not in listing, name


def test_man_pages_have_no_warnings() -> None:
    for page in sorted((REPO / "man").iterdir()):
        r = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True,
                           text=True, env={**os.environ, "MANWIDTH": "80"})
        assert r.returncode == 0 and r.stderr == "", (page.name, r.stderr)
        assert page.stem.split(".")[0] in r.stdout


def test_install_remove_purge(deb: Path, root: Path) -> None:
    before = snapshot(root)
    chroot(root, "update-grub")             # GRUB as a Debian install has it
    grub_before = (root / "boot/grub/grub.cfg").read_text()
    assert "with vigil" not in grub_before
    shutil.copy(deb, root / "tmp" / deb.name)
    r = chroot(root, "dpkg", "-i", f"/tmp/{deb.name}")
    (root / "tmp" / deb.name).unlink()
    assert "Found vigil: /sbin/vigil" in r.stderr, r.stdout + r.stderr   # postinst
    assert "menuentry 'Debian GNU/Linux, with vigil'" in (root / "boot/grub/grub.cfg").read_text()
    files = chroot(root, "dpkg", "-L", "vigil").stdout.split()
    for path in ["/sbin/vigil", "/usr/sbin/vigilctl", "/usr/lib/vigil/vigil",
                 "/usr/lib/vigil/units/getty@.toml", "/etc/vigil/vigil.toml",
                 "/etc/grub.d/42_vigil", "/usr/share/bash-completion/completions/vigilctl",
                 "/lib/lsb/init-functions.d/40-vigil",
                 *(f"/usr/share/man/{m}" for m in MAN_PAGES)]:
        assert path in files, path
    assert os.readlink(root / "sbin/vigil") == "/usr/lib/vigil/vigil"
    # the frozen program runs on a Debian that has no Python
    assert not (root / "usr/bin/python3").exists()
    assert chroot(root, "/sbin/vigil", "--version").stdout.strip() == f"vigil {_version()}"
    assert "usage: vigilctl" in chroot(root, "vigilctl", "--help").stdout
    # the installed init keeps its names
    assert os.path.realpath(root / "sbin/poweroff") == str(root / "usr/sbin/halt")
    assert chroot(root, "dpkg", "-S", "/sbin/shutdown").stdout.startswith("sysvinit-core:")
    status = chroot(root, "dpkg-query", "-W", "-f", "${Conffiles}", "vigil").stdout
    assert "/etc/vigil/vigil.toml" in status and "/etc/grub.d/42_vigil" in status

    # remove: the files go, the conffiles stay (dpkg's rule), the GRUB entry goes
    (root / "etc/vigil/units").mkdir()
    (root / "etc/vigil/units/mine.toml").write_text('[service]\nexec = "/bin/true"\n')
    chroot(root, "dpkg", "-r", "vigil")
    assert not (root / "usr/lib/vigil").exists() and not (root / "sbin/vigil").exists()
    assert (root / "etc/grub.d/42_vigil").exists()
    assert "with vigil" not in (root / "boot/grub/grub.cfg").read_text()
    assert chroot(root, "dpkg-query", "-W", "-f", "${Status}", "vigil").stdout == \
        "deinstall ok config-files"

    # purge: nothing of vigil is left; the machine is as it was
    chroot(root, "dpkg", "-P", "vigil")
    assert chroot(root, "dpkg-query", "-W", "vigil", check=False).returncode != 0
    assert snapshot(root) == before
    assert (root / "boot/grub/grub.cfg").read_text() == grub_before


def test_without_grub_the_scripts_do_nothing(deb: Path, root: Path) -> None:
    (root / "boot/grub/grub.cfg").unlink()     # GRUB not installed on this machine
    shutil.copy(deb, root / "tmp" / deb.name)
    r = chroot(root, "dpkg", "-i", f"/tmp/{deb.name}")
    (root / "tmp" / deb.name).unlink()
    assert "grub" not in (r.stdout + r.stderr).lower()
    assert not (root / "boot/grub/grub.cfg").exists()
    r = chroot(root, "dpkg", "-P", "vigil")
    assert not (root / "boot/grub/grub.cfg").exists() and not (root / "etc/vigil").exists()
