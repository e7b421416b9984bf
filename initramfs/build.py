"""Build the test initramfs: `python -m initramfs.build [--init busybox] [-o FILE]`.

Contents: the frozen vigil tree at /usr/lib/vigil with /sbin symlinks into it, busybox
and its applets, agetty, the shared libraries every ELF among them needs (found by
reading the ELF files), /etc for a passwordless root login, the stock units, optional
extra unit dirs, and optional kernel modules. `--init busybox` makes the same image with
busybox init as /sbin/init: the baseline for the benchmark and the harness's own tests.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from initramfs import cpio, elf, etc
from vigil.boot import modules

REPO = Path(__file__).resolve().parents[1]
FROZEN = REPO / "build" / "frozen" / "vigil"
BUSYBOX = "/bin/busybox"  # from busybox-static: no libraries to collect
AGETTY = "/sbin/agetty"  # util-linux's, where vigil's stock getty@ unit expects it
VIGIL_NAMES = ("vigil", "vigilctl", "poweroff", "reboot", "halt", "shutdown",
               "telinit", "runlevel")


class Image:
    """An archive whose paths follow the host's layout (merged /usr on Debian 12)."""

    def __init__(self) -> None:
        self.arc = cpio.Archive()
        # Mirror the host's top-level symlinks (bin -> usr/bin, ...) so a library's host
        # path, resolved through them, is also its path in the image.
        for top in ("bin", "sbin", "lib", "lib64"):
            host = "/" + top
            if os.path.islink(host):
                self.arc.add(cpio.symlink(top, os.readlink(host)))
            else:
                self.arc.add(cpio.directory(top))

    def canon(self, path: str) -> str:
        """`path` with its top-level symlink (bin -> usr/bin) followed: an entry's real path."""
        head, _, rest = path.strip("/").partition("/")
        e = self.arc.entries.get(head)
        if e is not None and stat.S_ISLNK(e.mode) and rest:
            return e.data.decode().strip("/") + "/" + rest
        return path.strip("/")

    def add(self, e: cpio.Entry) -> None:
        path = self.canon(e.path)
        self.arc.add(cpio.Entry(path, e.mode, e.data, e.rdev, e.uid, e.gid, e.mtime))

    def has(self, path: str) -> bool:
        return self.canon(path) in self.arc

    def host_file(self, path: str, image_path: str | None = None) -> None:
        """Copy a host file, or a symlink and (at host paths) whatever it points to."""
        d, name = os.path.split(os.path.abspath(path))
        real = os.path.join(os.path.realpath(d), name)
        if image_path is None:
            image_path = real
        if os.path.islink(real):
            target = os.readlink(real)
            self.add(cpio.symlink(image_path, target))
            self.host_file(os.path.join(os.path.dirname(real), target))
            return
        st = os.stat(real)
        with open(real, "rb") as f:
            self.add(cpio.Entry(image_path, stat.S_IFREG | stat.S_IMODE(st.st_mode), f.read()))

    def host_tree(self, src: Path, dest: str) -> list[str]:
        """Copy a host directory tree to `dest`; returns the host paths of its ELF files."""
        elves: list[str] = []
        for root, dirs, files in os.walk(src):
            rel = os.path.relpath(root, src)
            base = dest if rel == "." else f"{dest}/{rel}"
            self.add(cpio.directory(base))
            for name in sorted(dirs + files):
                host = os.path.join(root, name)
                if os.path.islink(host):
                    self.add(cpio.symlink(f"{base}/{name}", os.readlink(host)))
                elif name in files:
                    self.host_file(host, f"{base}/{name}")
                    if elf.is_elf(host):
                        elves.append(host)
        return elves

    def libraries(self, elves: list[str], bundle_dirs: tuple[str, ...] = ()) -> None:
        """Add the libraries `elves` need, except those their bundle already holds."""
        found, missing = elf.resolve(elves, extra_dirs=bundle_dirs)
        if missing:
            raise RuntimeError(f"libraries not found on the host: {sorted(missing)}")
        for lib in sorted(found):
            if not any(lib.startswith(d + "/") for d in bundle_dirs):
                self.host_file(lib)


def add_base(img: Image, init: str) -> None:
    for d in ("dev", "proc", "sys", "run", "etc", "usr/bin", "usr/sbin", "var/log",
              "mnt"):
        img.add(cpio.directory(d))
    img.add(cpio.directory("root", 0o700))
    img.add(cpio.directory("tmp", 0o1777))
    # The kernel opens /dev/console for PID 1 before anything mounts devtmpfs.
    img.add(cpio.chardev("dev/console", 5, 1, 0o600))
    img.add(cpio.chardev("dev/null", 1, 3, 0o666))
    img.add(cpio.chardev("dev/tty", 5, 0, 0o666))
    for path, text, perm in (
        ("etc/passwd", etc.PASSWD, 0o644),
        ("etc/shadow", etc.SHADOW, 0o600),
        ("etc/group", etc.GROUP, 0o644),
        ("etc/shells", etc.SHELLS, 0o644),
        ("etc/hostname", etc.HOSTNAME, 0o644),
        ("etc/profile", etc.profile(init), 0o644),
        ("etc/issue", etc.ISSUE, 0o644),
    ):
        img.add(cpio.file(path, text.encode(), perm))


def add_busybox(img: Image, skip: set[str]) -> None:
    img.host_file(BUSYBOX)
    import subprocess

    applets = subprocess.run(
        [BUSYBOX, "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    for rel in applets:
        # Names another program provides (vigil's, agetty's) keep that program.
        if os.path.basename(rel) in skip or img.has(rel):
            continue
        img.add(cpio.symlink(rel, BUSYBOX))


def add_vigil(img: Image, frozen: Path) -> None:
    if not (frozen / "vigil").is_file():
        raise FileNotFoundError(f"{frozen}/vigil: run `make build` first")
    elves = img.host_tree(frozen, "usr/lib/vigil")
    internal = str(frozen / "_internal")
    img.libraries(elves, bundle_dirs=(str(frozen), internal))


def add_units(img: Image, stock: Path, extra: list[Path]) -> None:
    img.add(cpio.directory("usr/lib/vigil/units"))
    img.add(cpio.directory("etc/vigil/units"))
    for dest, dirs in (("usr/lib/vigil/units", [stock]), ("etc/vigil/units", extra)):
        for d in dirs:
            for f in sorted(d.glob("*.toml")):
                img.add(cpio.file(f"{dest}/{f.name}", f.read_bytes()))


def module_closure(modules_dir: Path, names: list[str]) -> list[str]:
    """The .ko paths (relative to modules_dir) for `names` and all they depend on, read
    with the same modules.dep parser as the initramfs stage that will load them."""
    deps = modules.parse_dep((modules_dir / "modules.dep").read_text())
    todo = []
    for n in names:
        if modules.normalize(n) not in deps:
            raise KeyError(f"no module {n} in {modules_dir}/modules.dep")
        todo.append(modules.normalize(n))
    out: list[str] = []
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            out.append(deps[name].path)
            todo.extend(deps[name].deps)
    return out


def add_modules(img: Image, modules_dir: Path, names: list[str]) -> None:
    version = modules_dir.name
    dest = f"usr/lib/modules/{version}"
    for rel in module_closure(modules_dir, names):
        img.add(cpio.file(f"{dest}/{rel}", (modules_dir / rel).read_bytes()))
    # What the initramfs stage loads before it looks for root= (vigil.boot.initrd).
    img.add(cpio.file("etc/vigil/initrd-modules", "".join(n + "\n" for n in names).encode()))
    # The index files describe all modules; vigil's loader resolves through them.
    for f in sorted(modules_dir.glob("modules.*")):
        if f.is_file():
            img.add(cpio.file(f"{dest}/{f.name}", f.read_bytes()))


def build(
    out: Path,
    init: str = "vigil",
    frozen: Path = FROZEN,
    extra_units: list[Path] | None = None,
    modules: list[str] | None = None,
    modules_dir: Path | None = None,
    console: str = "ttyS0",
    hello: Path | None = None,
) -> Path:
    img = Image()
    add_base(img, init)
    add_vigil(img, frozen)
    names = VIGIL_NAMES if init == "vigil" else ("vigil", "vigilctl")
    # The client's names go to the client program of the tree, which starts faster (an
    # older tree without one: the multi-call program answers to them too).
    client = "vigilctl" if (frozen / "vigilctl").is_file() else "vigil"
    for name in names:
        target = "vigil" if name == "vigil" else client
        img.add(cpio.symlink(f"sbin/{name}", f"/usr/lib/vigil/{target}"))
    if init == "busybox":
        img.add(cpio.symlink("sbin/init", BUSYBOX))
        img.add(cpio.file("etc/inittab", etc.inittab(console).encode()))
    elif init == "vigil":
        img.add(cpio.symlink("sbin/init", "/usr/lib/vigil/vigil"))
    else:
        raise ValueError(f"init must be vigil or busybox, not {init!r}")
    if hello is not None:  # the frozen floor program, for the benchmark
        img.libraries(img.host_tree(hello, "usr/lib/hello"),
                      bundle_dirs=(str(hello), str(hello / "_internal")))
    img.host_file(AGETTY)
    img.libraries([AGETTY])
    add_busybox(img, skip={os.path.basename(AGETTY), "getty"})
    add_units(img, REPO / "units", extra_units or [])
    if modules:
        if modules_dir is None:
            raise ValueError("modules need modules_dir (the kernel's lib/modules/VERSION)")
        add_modules(img, modules_dir, modules)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    img.arc.write_gzip(str(tmp))
    tmp.replace(out)  # never leave a half-written image where a test would boot it
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", choices=("vigil", "busybox"), default="vigil")
    p.add_argument("-o", "--output", type=Path)
    p.add_argument("--frozen", type=Path, default=FROZEN)
    p.add_argument("--units", type=Path, action="append", default=[],
                   help="extra unit dir, copied to /etc/vigil/units (repeatable)")
    p.add_argument("--hello", type=Path, help="a frozen hello tree, put at /usr/lib/hello")
    p.add_argument("--module", action="append", default=[], help="kernel module to add")
    p.add_argument("--modules-dir", type=Path, help="the kernel's lib/modules/VERSION")
    args = p.parse_args(argv)
    default = "initramfs.cpio.gz" if args.init == "vigil" else "initramfs-busybox.cpio.gz"
    out = args.output or REPO / "build" / default
    if args.module and args.modules_dir is None:
        # Not fetched here: vm/ builds on initramfs/, never the other way round.
        p.error("--module needs --modules-dir (`python -m vm.kernel --print` says where the "
                "test kernel's modules are)")
    print(build(out, args.init, args.frozen, args.units, args.module, args.modules_dir,
                hello=args.hello))
    return 0


if __name__ == "__main__":
    sys.exit(main())
