"""A fake machine under a temporary import root: unit files, init.d scripts, links."""

import os
import shutil
from pathlib import Path

from vigil.unit import Catalog

SYSTEM = "lib/systemd/system"
ETC = "etc/systemd/system"


class Machine:
    def __init__(self, root: Path):
        self.root = root

    def file(self, path: str, text: str | bytes, mode: int = 0o644) -> Path:
        p = self.root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
        p.chmod(mode)
        return p

    def link(self, path: str, target: str) -> Path:
        p = self.root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)
        return p

    def unit(self, name: str, text: str, where: str = SYSTEM) -> Path:
        return self.file(f"{where}/{name}", text)

    def script(self, name: str, text: str) -> Path:
        return self.file(f"etc/init.d/{name}", text, 0o755)

    def want(self, target: str, name: str, kind: str = "wants") -> Path:
        return self.link(f"{ETC}/{target}.{kind}/{name}", f"/{SYSTEM}/{name}")

    def rc(self, level: str, name: str, order: str = "01") -> Path:
        return self.link(f"etc/rc{level}.d/S{order}{name}", f"../init.d/{name}")

    def copy(self, package_root: Path, path: str, to: str | None = None) -> Path:
        """A file of a real Debian package, at the same place (or `to`) on this machine."""
        dest = self.root / (to or path).lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(package_root / path.lstrip("/"), dest)
        return dest

    def catalog(self, *dirs: Path) -> Catalog:
        return Catalog([str(d) for d in dirs], import_root=str(self.root))

    def path(self, path: str) -> str:
        return str(self.root / path.lstrip("/"))
