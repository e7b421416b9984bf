"""Freeze a Python entry point into a PyInstaller onedir tree: `python init/freeze/freeze.py`.

Onedir, not onefile: a onefile program unpacks itself and runs Python in a forked
child, so the process the kernel starts as PID 1 would not be the one running vigil.
The hash seed is fixed at build time (`--python-option hash_seed=0`) because a random
one is read from getrandom() or /dev/urandom, and PID 1 starts before /dev exists.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# name -> entry script; each becomes build/frozen/NAME/NAME with its _internal/ beside it.
PROGRAMS = {
    "vigil": REPO / "init" / "vigil" / "multicall.py",
    "hello": REPO / "init" / "freeze" / "hello.py",
}


def freeze(name: str, dist: Path, work: Path) -> Path:
    script = PROGRAMS[name]
    cmd = [
        sys.executable, "-m", "PyInstaller",
        "--onedir", "--noconfirm", "--log-level", "WARN",
        "--name", name,
        "--distpath", str(dist),
        "--workpath", str(work),
        "--specpath", str(work),
        "--python-option", "hash_seed=0",
        "--paths", str(REPO / "init"),
    ]
    if name == "vigil":
        # vigil imports some modules only when a code path needs them; take them all.
        cmd += ["--collect-submodules", "vigil"]
    cmd.append(str(script))
    subprocess.run(cmd, check=True, cwd=REPO)
    exe = dist / name / name
    if not exe.is_file():
        raise RuntimeError(f"PyInstaller made no {exe}")
    return exe


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"some of {', '.join(PROGRAMS)} (default: all)")
    p.add_argument("--dist", type=Path, default=REPO / "build" / "frozen")
    p.add_argument("--work", type=Path, default=REPO / "build" / "pyinstaller")
    args = p.parse_args(argv)
    unknown = set(args.names) - set(PROGRAMS)
    if unknown:
        p.error(f"unknown program(s): {', '.join(sorted(unknown))}")
    for name in args.names or list(PROGRAMS):
        print(freeze(name, args.dist, args.work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
