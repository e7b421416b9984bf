"""Fetch Debian's kernel into the cache, once: `python -m vm.kernel` (or `make kernel`).

The package is the one `linux-image-amd64` depends on, asked of apt-cache, downloaded
with the host's own apt sources (`apt-get download`) and unpacked with `dpkg-deb -x`.
We keep vmlinuz and /lib/modules/VERSION, and run depmod since the package ships no
modules.dep. A second run finds the cache complete and does nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

META_PACKAGE = "linux-image-amd64"


@dataclass(frozen=True)
class Kernel:
    version: str  # e.g. 6.1.0-41-amd64
    vmlinuz: Path
    root: Path  # holds lib/modules/VERSION (a depmod base dir)

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.version


def cache_dir() -> Path:
    env = os.environ.get("VIGIL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "vigil"


def kernel_dir() -> Path:
    return cache_dir() / "kernel"


def cached() -> Kernel | None:
    """The kernel in the cache, if a previous fetch completed (the stamp is written last)."""
    stamp = kernel_dir() / "VERSION"
    if not stamp.is_file():
        return None
    version = stamp.read_text().strip()
    k = Kernel(version, kernel_dir() / "vmlinuz", kernel_dir())
    if k.vmlinuz.is_file() and (k.modules / "modules.dep").is_file():
        return k
    return None


def _depends() -> re.Match[str] | None:
    out = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", META_PACKAGE],
        check=False, capture_output=True, text=True,
    ).stdout
    return re.search(r"^Depends:\s*(linux-image-[^\s,(|]+)", out, re.MULTILINE)


def image_package() -> str:
    """The versioned image package (linux-image-X-amd64) the meta package depends on."""
    m = _depends()
    if not m and os.geteuid() == 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        m = _depends()
    if not m:
        raise RuntimeError(
            f"apt-cache knows no {META_PACKAGE} with a linux-image dependency "
            "(run apt-get update?)"
        )
    return m.group(1)


def fetch(verbose: bool = True) -> Kernel:
    k = cached()
    if k is not None:
        return k
    package = image_package()
    dest = kernel_dir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Unpack into a scratch dir beside the cache, then move: an interrupted run
    # leaves no half kernel that `cached()` would take for a complete one.
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix="kernel-tmp.") as tmp:
        work = Path(tmp)
        if verbose:
            print(f"kernel: apt-get download {package}", file=sys.stderr)
        cmd = ["apt-get", "download", "-q", package]
        if os.geteuid() == 0:
            # The scratch dir is private (0700): let apt write there as root rather than
            # as its sandbox user, which would only warn and then do the same.
            cmd[1:1] = ["-o", "APT::Sandbox::User=root"]
        subprocess.run(cmd, cwd=work, check=True)
        debs = list(work.glob("*.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"expected one .deb from apt-get download, got {debs}")
        tree = work / "tree"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tree)], check=True)
        vmlinuz = next(iter(sorted((tree / "boot").glob("vmlinuz-*"))), None)
        if vmlinuz is None:
            raise RuntimeError(f"{package} has no /boot/vmlinuz-*")
        version = vmlinuz.name.removeprefix("vmlinuz-")

        out = work / "kernel"
        (out / "lib" / "modules").mkdir(parents=True)
        shutil.move(str(vmlinuz), out / "vmlinuz")
        # Debian 12 ships modules under /lib (merged-/usr makes that /usr/lib on disk).
        for base in (tree / "lib" / "modules", tree / "usr" / "lib" / "modules"):
            if (base / version).is_dir():
                shutil.move(str(base / version), out / "lib" / "modules" / version)
                break
        else:
            raise RuntimeError(f"{package} has no lib/modules/{version}")
        subprocess.run(["depmod", "-b", str(out), version], check=True)
        (out / "VERSION").write_text(version + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        out.rename(dest)
    k = cached()
    assert k is not None
    return k


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--print", action="store_true", help="print the kernel's paths")
    args = p.parse_args(argv)
    k = fetch()
    if args.print:
        print(f"version {k.version}\nvmlinuz {k.vmlinuz}\nmodules {k.modules}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
