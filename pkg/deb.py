"""Build vigil_VERSION_amd64.deb: `python pkg/deb.py` (make deb).

The tree is laid out in a scratch directory and dpkg-deb builds the package from it:

  /usr/lib/vigil/                the frozen program (PyInstaller onedir: no Python needed)
  /usr/lib/vigil/units/          the stock units
  /sbin/vigil                    -> /usr/lib/vigil/vigil (boot with init=/sbin/vigil)
  /usr/sbin/vigilctl             -> ../lib/vigil/vigilctl (the client program)
  /etc/vigil/vigil.toml          conffile: every setting, commented out
  /etc/grub.d/42_vigil           conffile: the "..., with vigil" GRUB entry
  /usr/share/man/man5, man8      vigil(8), vigilctl(8), vigil.unit(5), vigil.toml(5)
  /usr/share/bash-completion/completions/vigilctl
  /lib/lsb/init-functions.d/40-vigil   the LSB hook: init.d scripts go through vigilctl
  /usr/share/doc/vigil/          copyright, changelog.gz

No sysvinit command name (poweroff, reboot, halt, shutdown, telinit, runlevel) is in the
package: those stay the installed init's, and reach vigil through /run/initctl when vigil
is PID 1 (see the README). Depends is what dpkg-shlibdeps finds the frozen program needs
from the system (the libraries PyInstaller did not copy: libc).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "pkg"
FROZEN = REPO / "build" / "frozen" / "vigil"
ARCH = "amd64"
MAINTAINER = "vigil maintainers <maintainers@users.noreply.b-seed-d000101d.example>"  # the repo's
CONFFILES = ("/etc/vigil/vigil.toml", "/etc/grub.d/42_vigil")
MAN_PAGES = ("vigil.8", "vigilctl.8", "vigil.unit.5", "vigil.toml.5")
DESCRIPTION = """\
init system: one epoll loop, TOML units, vigilctl
 vigil is a PID 1 init system for Linux, written in Python and shipped frozen
 (the interpreter comes with it). It boots the machine (kernel file systems,
 modules, fstab, swap, udev, sysctl, the loopback), supervises services
 declared in TOML unit files, imports the machine's systemd units, init.d
 scripts and inittab, and is driven with vigilctl.
 .
 It installs beside the installed init (sysvinit or systemd) without
 replacing it: boot the GRUB entry "..., with vigil" (or init=/sbin/vigil)
 to try it; the default entry keeps booting the installed init."""


def version() -> str:
    sys.path.insert(0, str(REPO / "init"))
    from vigil import VERSION
    return VERSION


def _gzip(src: Path, dst: Path) -> None:
    """gzip -9n: no name and no time stamp, so the same input gives the same file."""
    with open(src, "rb") as f, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw,
                           mtime=0) as z:
            z.write(f.read())


def changelog(ver: str) -> str:
    return (f"vigil ({ver}) unstable; urgency=medium\n\n"
            "  * Package of vigil: the frozen program, units, man pages, GRUB entry.\n\n"
            f" -- {MAINTAINER}  Tue, 02 Dec 2025 12:00:00 +0000\n")


def stage(root: Path, frozen: Path, ver: str) -> None:
    """Lay out the package's files under root (DEBIAN/ included but control)."""
    lib = root / "usr" / "lib" / "vigil"
    shutil.copytree(frozen, lib, symlinks=True)
    # PyInstaller copied the system libraries the interpreter links (zlib, libbz2, expat,
    # libffi, liblzma, OpenSSL) beside it, for the initramfs where nothing else is. On a
    # Debian system the package depends on Debian's own instead (they get security
    # updates); only the interpreter, libpython, stays.
    for copy in (lib / "_internal").glob("lib*.so*"):
        if not copy.name.startswith("libpython"):
            copy.unlink()
    (lib / "units").mkdir()
    for unit in sorted((REPO / "units").glob("*.toml")):
        shutil.copy(unit, lib / "units" / unit.name)
    (root / "sbin").mkdir()
    (root / "sbin" / "vigil").symlink_to("/usr/lib/vigil/vigil")
    (root / "usr" / "sbin").mkdir(parents=True)
    (root / "usr" / "sbin" / "vigilctl").symlink_to("../lib/vigil/vigilctl")
    (root / "etc" / "vigil").mkdir(parents=True)
    shutil.copy(PKG / "vigil.toml", root / "etc" / "vigil" / "vigil.toml")
    (root / "etc" / "grub.d").mkdir()
    shutil.copy(PKG / "42_vigil", root / "etc" / "grub.d" / "42_vigil")
    for page in MAN_PAGES:
        section = root / "usr" / "share" / "man" / f"man{page[-1]}"
        section.mkdir(parents=True, exist_ok=True)
        _gzip(REPO / "man" / page, section / f"{page}.gz")
    # init.d scripts run by hand or by invoke-rc.d go through vigilctl while vigil runs
    hooks = root / "lib" / "lsb" / "init-functions.d"
    hooks.mkdir(parents=True)
    shutil.copy(REPO / "init" / "lsb" / "init-functions.d" / "40-vigil", hooks / "40-vigil")
    completions = root / "usr" / "share" / "bash-completion" / "completions"
    completions.mkdir(parents=True)
    shutil.copy(PKG / "vigilctl.bash", completions / "vigilctl")
    doc = root / "usr" / "share" / "doc" / "vigil"
    doc.mkdir(parents=True)
    shutil.copy(PKG / "copyright", doc / "copyright")
    overrides = root / "usr" / "share" / "lintian" / "overrides"
    overrides.mkdir(parents=True)
    shutil.copy(PKG / "lintian-overrides", overrides / "vigil")
    text = root / "changelog"
    text.write_text(changelog(ver))
    _gzip(text, doc / "changelog.gz")
    text.unlink()
    debian = root / "DEBIAN"
    debian.mkdir()
    for script in ("postinst", "postrm"):
        shutil.copy(PKG / script, debian / script)
    (debian / "conffiles").write_text("".join(f"{c}\n" for c in CONFFILES))
    _modes(root)
    (debian / "md5sums").write_text(_md5sums(root))


def _modes(root: Path) -> None:
    """Directories 755, files 644, programs and maintainer scripts 755 (as dpkg wants)."""
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink():
                continue
            library = p.suffix == ".so" or ".so." in p.name
            os.chmod(p, 0o755 if p.stat().st_mode & 0o111 and not library else 0o644)
    for script in ("postinst", "postrm"):
        os.chmod(root / "DEBIAN" / script, 0o755)
    os.chmod(root / "etc" / "grub.d" / "42_vigil", 0o755)


def _md5sums(root: Path) -> str:
    lines = []
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        rel = Path(dirpath).relative_to(root)
        if rel.parts[:1] == ("DEBIAN",):
            continue
        for name in sorted(files):
            p = Path(dirpath) / name
            if p.is_symlink() or f"/{rel / name}" in CONFFILES:
                continue
            lines.append(f"{hashlib.md5(p.read_bytes()).hexdigest()}  {rel / name}\n")
    return "".join(lines)


def depends(root: Path) -> str:
    """dpkg-shlibdeps on the frozen program's ELF files: what they need from the system
    (the libraries in _internal are the package's own, -l tells it so)."""
    internal = root / "usr" / "lib" / "vigil" / "_internal"
    elves = [str(p) for p in sorted(root.joinpath("usr/lib/vigil").rglob("*"))
             if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "debian").mkdir()
        (Path(tmp) / "debian" / "control").write_text(
            "Source: vigil\n\nPackage: vigil\nArchitecture: any\n")
        out = subprocess.run(
            ["dpkg-shlibdeps", "-O", "--ignore-missing-info", f"-l{internal}",
             *(f"-e{e}" for e in elves)],
            cwd=tmp, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("shlibs:Depends="):
            return line.split("=", 1)[1]
    raise RuntimeError(f"dpkg-shlibdeps gave no shlibs:Depends: {out!r}")


def control(root: Path, ver: str) -> str:
    size = sum(p.lstat().st_size for p in root.rglob("*") if "DEBIAN" not in p.parts)
    return (f"Package: vigil\nVersion: {ver}\nArchitecture: {ARCH}\n"
            f"Maintainer: {MAINTAINER}\nInstalled-Size: {(size + 1023) // 1024}\n"
            f"Depends: {depends(root)}\nSection: admin\nPriority: optional\n"
            f"Description: {DESCRIPTION}\n")


def build(out_dir: Path, frozen: Path = FROZEN) -> Path:
    ver = version()
    out_dir = out_dir.resolve()   # dpkg-shlibdeps runs elsewhere
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / f"vigil_{ver}_{ARCH}.deb"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix="deb-tmp.") as tmp:
        root = Path(tmp) / "root"
        stage(root, frozen, ver)
        (root / "DEBIAN" / "control").write_text(control(root, ver))
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root),
                        str(deb)], check=True, stdout=subprocess.DEVNULL)
    return deb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--out", type=Path, default=REPO / "build")
    p.add_argument("--frozen", type=Path, default=FROZEN)
    args = p.parse_args(argv)
    print(build(args.out, args.frozen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
