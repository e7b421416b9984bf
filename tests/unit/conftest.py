"""Real unit files and init.d scripts of Debian packages, fetched with the host's apt sources.

`apt-get download` puts each package's .deb in $VIGIL_CACHE/debian-units (default
~/.cache/vigil/debian-units), in a directory named after the package and its version, and
dpkg-deb extracts it there; later runs use what is there. Without apt-get (not a Debian
machine) the tests that need these files are skipped, saying so.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("VIGIL_CACHE") or Path.home() / ".cache" / "vigil") / "debian-units"


def _download(package: str, into: Path) -> Path:
    for attempt in range(2):
        r = subprocess.run(["apt-get", "download", package], cwd=into, capture_output=True,
                           text=True)
        debs = sorted(into.glob(f"{package}_*.deb"))
        if r.returncode == 0 and debs:
            return debs[-1]
        if attempt == 0 and os.geteuid() == 0:   # a fresh machine: no package lists yet
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
    pytest.skip(f"apt-get download {package} failed: {r.stderr.strip()[-300:]}")


def debian_package(package: str) -> Path:
    """The extracted files of a Debian package (its root directory)."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        pytest.skip("apt-get and dpkg-deb are needed to fetch Debian's unit files")
    found = sorted(p for p in CACHE.glob(f"{package}_*") if (p / ".extracted").exists())
    if found:
        return found[-1]
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    deb = _download(package, downloads)
    target = CACHE / deb.name[:-len(".deb")]
    if target.exists():
        shutil.rmtree(target)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    (target / ".extracted").touch()
    return target


@pytest.fixture(scope="session")
def debian():
    return debian_package
