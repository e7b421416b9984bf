"""Freeze a Python entry point into a PyInstaller onedir tree: `python init/freeze/freeze.py`.

Onedir, not onefile: a onefile program unpacks itself and runs Python in a forked
child, so the process the kernel starts as PID 1 would not be the one running vigil.
The hash seed is fixed at build time (`--python-option hash_seed=0`) because a random
one is read from getrandom() or /dev/urandom, and PID 1 starts before /dev exists.

The build goes through a spec file written here (build/pyinstaller/NAME.spec), for what
PyInstaller's command line cannot say (the figures are in the README, "Speed"):
- the vigil tree holds two programs sharing one _internal/: `vigil` (the init, and the
  client under a client's name) and `vigilctl`, the client alone, whose bundle leaves out
  the unit parser and ctypes (PyInstaller's bootstrap imports ctypes at every start when
  the bundle has it);
- PyInstaller's run-time hook for `inspect` is left out: it imports inspect and zipfile
  at every start (about 60 % of a bare frozen start) to fix inspect.getsourcefile() for
  frozen code, which vigil never calls.
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
# The client program frozen into the vigil tree, beside the init.
CLIENT = REPO / "init" / "freeze" / "vigilctl.py"
# What the client's bundle leaves out; vigil.multicall.needs_full hands the command lines
# that need any of it to the full program.
CLIENT_EXCLUDES = ["vigil.main", "vigil.unit", "vigil.graph", "vigil.translate",
                   "vigil.linux", "vigil.boot", "vigil.supervisor", "vigil.service",
                   "vigil.spawn", "ctypes", "tomllib", "pyudev"]
# Run-time hooks PyInstaller would run at every start that vigil does not need.
DROPPED_RTHOOKS = ["pyi_rth_inspect"]

SPEC = '''\
# Written by init/freeze/freeze.py at each build: change that, not this.
from PyInstaller.utils.hooks import collect_submodules

OPTIONS = [(option, None, "OPTION") for option in {options!r}]


def analysis(script, **kwargs):
    a = Analysis([script], pathex=[{init!r}], **kwargs)
    a.scripts = [s for s in a.scripts if s[0] not in {dropped!r}]
    return a


def program(a, name):
    return EXE(PYZ(a.pure), a.scripts, OPTIONS, exclude_binaries=True, name=name,
               console=True, strip=False, upx=False)


main = analysis({script!r}, hiddenimports={hidden})
programs = [program(main, {name!r})]
parts = [main.binaries, main.datas]
if {client!r}:
    client = analysis({client!r}, excludes={excludes!r})
    programs.append(program(client, "vigilctl"))
    parts += [client.binaries, client.datas]
COLLECT(*programs, *parts, strip=False, upx=False, name={name!r})
'''


def write_spec(name: str, work: Path, options: list[str]) -> Path:
    vigil = name == "vigil"
    spec = work / f"{name}.spec"
    work.mkdir(parents=True, exist_ok=True)
    spec.write_text(SPEC.format(
        options=["hash_seed=0", *options],
        init=str(REPO / "init"),
        dropped=DROPPED_RTHOOKS,
        script=str(PROGRAMS[name]),
        # vigil imports some modules only when a code path needs them; take them all.
        hidden='collect_submodules("vigil")' if vigil else "[]",
        name=name,
        client=str(CLIENT) if vigil else "",
        excludes=CLIENT_EXCLUDES,
    ))
    return spec


def freeze(name: str, dist: Path, work: Path, options: list[str] | None = None) -> Path:
    spec = write_spec(name, work, options or [])
    cmd = [
        sys.executable, "-m", "PyInstaller",
        "--noconfirm", "--log-level", "WARN",
        "--distpath", str(dist),
        "--workpath", str(work),
        str(spec),
    ]
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
    p.add_argument("--python-option", action="append", default=[], metavar="OPTION",
                   help="one more interpreter option, e.g. 'X importtime' (to measure)")
    args = p.parse_args(argv)
    unknown = set(args.names) - set(PROGRAMS)
    if unknown:
        p.error(f"unknown program(s): {', '.join(sorted(unknown))}")
    for name in args.names or list(PROGRAMS):
        print(freeze(name, args.dist, args.work, args.python_option))
    return 0


if __name__ == "__main__":
    sys.exit(main())
