"""Compare the freezers vigil could ship with: PyInstaller onedir/onefile, Nuitka, cx_Freeze.

Usage: .venv/bin/python bench/freezers.py [--only NAME,...] [--rebuild] [--runs N]
       [--build-timeout S] [--json FILE]

Each candidate freezes two programs: init/freeze/hello.py (the floor: an interpreter
that prints one line) and vigil (init/vigil/multicall.py with init/ on the path and the
whole vigil package included, as init/freeze/freeze.py does). A third, throw-away
program (pidcheck, written under the scratch directory) prints its own pid, parent
pid and Python version, so that the pid the kernel started can be compared with the
pid the Python code runs in. Needs root (unshare, mount). Never asserts: prints a
table, and ratios to PyInstaller onedir.

PyInstaller runs from this repo's venv. Nuitka and cx_Freeze are pip-installed into a
separate venv made from /usr/bin/python3 under the scratch directory; a candidate that
cannot be installed or built is skipped with the reason. Builds are cached under the
scratch directory with their build times, and redone when the command or the entry
script changes (--rebuild to redo them anyway, e.g. after vigil's sources changed).

How each column is taken:
- build: wall clock of one cold freeze (Nuitka with its caches disabled, PyInstaller
  with a config dir of its own, so no binary cache); the machine's load counts in;
- size: `du -sk` of what must be shipped (the onedir tree, or the one onefile file);
- start: median wall clock of --runs runs of `hello` and of `vigil --version`, run
  round-robin across candidates so that the machine's load falls on all alike;
- memory: Rss/Pss from /proc/PID/smaps_rollup, summed over the frozen program's own
  processes (a onefile launcher and its child both count); hello sleeping, vigil as
  PID 1 of a PID namespace supervising 10 `sleep` services, read 2 s after start;
- same pid: the pid the Python code sees (os.getpid()) is the pid that was exec'd;
  pidcheck is started with an empty environment, and the variables found in its
  /proc/PID/environ are the ones the freezer's launcher set (children inherit them);
- starts: `hello` and `vigil --version` run with `env -i` in a mount namespace where
  /dev is an empty tmpfs (no /dev/urandom, no /dev/null) and /tmp an empty tmpfs; then
  again with / and /tmp read-only (nowhere to unpack to, as under a read-only root);
  then with /tmp writable but every getrandom() failing with EAGAIN (strace injects it:
  an entropy pool not ready yet), so a random hash seed would need the absent
  /dev/urandom.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCRATCH = Path(os.environ.get("FREEZERS_SCRATCH", "/tmp/freezers"))
REPO_PY = REPO / ".venv" / "bin" / "python"
ALT_VENV = SCRATCH / "venv"
ALT_PY = ALT_VENV / "bin" / "python"
# What the separate venv needs: the freezers, and vigil's own dependencies (pyproject).
ALT_PACKAGES = ["nuitka", "ordered-set", "cx_Freeze", "pyudev", "tomli-w"]
# vigil.boot.modules imports zstandard if it is there; the repo's venv has not got it, so
# the separate venv must not either (else Nuitka and cx_Freeze ship 23 MB more of it).
ALT_ABSENT = ["zstandard"]

PIDCHECK_SRC = '''\
import os
import sys
import time

print(os.getpid(), os.getppid(), sys.version.split()[0], flush=True)
if len(sys.argv) > 1:
    time.sleep(float(sys.argv[1]))
'''

UNIT = '[service]\nexec = ["/bin/sleep", "1000"]\nlog = "null"\n'
N_UNITS = 10
BASE = "pyinstaller-onedir"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def programs() -> dict[str, Path]:
    pidcheck = SCRATCH / "src" / "pidcheck.py"
    pidcheck.parent.mkdir(parents=True, exist_ok=True)
    if not pidcheck.exists() or pidcheck.read_text() != PIDCHECK_SRC:
        pidcheck.write_text(PIDCHECK_SRC)
    return {
        "hello": REPO / "init" / "freeze" / "hello.py",
        "vigil": REPO / "init" / "vigil" / "multicall.py",
        "pidcheck": pidcheck,
    }


# ---------------------------------------------------------------- candidates
# Each build function returns (command, env, the executable it makes, what to ship).


def pyinstaller(onefile: bool):
    def build(name: str, script: Path, out: Path) -> tuple[list[str], dict, Path, Path]:
        # The same options as init/freeze/freeze.py, but --onefile where asked.
        cmd = [
            str(REPO_PY), "-m", "PyInstaller",
            "--onefile" if onefile else "--onedir", "--noconfirm", "--log-level", "WARN",
            "--name", name,
            "--distpath", str(out / "dist"),
            "--workpath", str(out / "work"),
            "--specpath", str(out / "work"),
            "--python-option", "hash_seed=0",
            "--paths", str(REPO / "init"),
        ]
        if name == "vigil":
            cmd += ["--collect-submodules", "vigil"]
        cmd.append(str(script))
        # A config dir of its own: no binary cache from earlier builds, a cold build.
        env = {"PYINSTALLER_CONFIG_DIR": str(out / "config")}
        if onefile:
            exe = out / "dist" / name
            return cmd, env, exe, exe
        return cmd, env, out / "dist" / name / name, out / "dist" / name
    return build


def nuitka(name: str, script: Path, out: Path) -> tuple[list[str], dict, Path, Path]:
    cmd = [
        str(ALT_PY), "-m", "nuitka", "--standalone",
        "--output-dir=" + str(out), "--output-filename=" + name,
        "--remove-output", "--quiet", "--update-check=never",
        # static_hashes: the counterpart of PyInstaller's hash_seed=0.
        "--python-flag=static_hashes",
    ]
    if name != "pidcheck":
        cmd.append("--disable-cache=all")  # a cold build, as on a fresh CI machine
    if name == "vigil":
        cmd.append("--include-package=vigil")
    cmd.append(str(script))
    env = {"PYTHONPATH": str(REPO / "init")}
    dist = out / (script.stem + ".dist")
    return cmd, env, dist / name, dist


def cx_freeze(name: str, script: Path, out: Path) -> tuple[list[str], dict, Path, Path]:
    dist = out / "dist"
    cmd = [
        str(ALT_VENV / "bin" / "cxfreeze"), "--script", str(script),
        "--target-name", name, "--target-dir", str(dist),
        "build_exe", "--silent", "--include-path", str(REPO / "init"),
    ]
    if name == "vigil":
        cmd += ["--packages", "vigil"]
    return cmd, {}, dist / name, dist


CANDIDATES: dict[str, dict[str, Any]] = {
    "pyinstaller-onedir": {"build": pyinstaller(False), "needs": "repo"},
    "pyinstaller-onefile": {"build": pyinstaller(True), "needs": "repo"},
    "nuitka": {"build": nuitka, "needs": "alt", "module": "nuitka"},
    "cx_freeze": {"build": cx_freeze, "needs": "alt", "module": "cx_Freeze"},
}


def version_of(py: Path, module: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "?"


def ensure_alt_venv() -> str | None:
    """Make the separate venv; returns why it could not be made, or None."""
    if not ALT_PY.exists():
        log(f"making {ALT_VENV}")
        r = subprocess.run(["/usr/bin/python3", "-m", "venv", str(ALT_VENV)],
                           capture_output=True, text=True)
        if r.returncode:
            return "venv: " + (r.stderr.strip().splitlines() or ["failed"])[-1]
    missing = [p for p in ALT_PACKAGES
               if subprocess.run([str(ALT_PY), "-m", "pip", "show", "-q", p],
                                 capture_output=True).returncode]
    if missing:
        log(f"pip install {' '.join(missing)} into {ALT_VENV}")
        r = subprocess.run([str(ALT_PY), "-m", "pip", "install", "-q", *missing],
                           capture_output=True, text=True)
        if r.returncode:
            err = [ln for ln in r.stderr.splitlines() if ln.startswith("ERROR")]
            return "pip install: " + (err[-1] if err else f"exit {r.returncode}")
    for pkg in ALT_ABSENT:
        if subprocess.run([str(ALT_PY), "-m", "pip", "show", "-q", pkg],
                          capture_output=True).returncode == 0:
            log(f"pip uninstall {pkg} from {ALT_VENV}")
            subprocess.run([str(ALT_PY), "-m", "pip", "uninstall", "-y", "-q", pkg],
                           capture_output=True)
    return None


def tools_missing(cand: str) -> str | None:
    if cand == "nuitka":
        for tool in ("gcc", "patchelf"):
            if not shutil.which(tool):
                return f"{tool} not found (apt-get install {tool})"
    return None


def build_all(cands: list[str], rebuild: bool, timeout: float) -> dict[str, dict[str, Any]]:
    """Freezes every program with every candidate; returns per candidate its builds or why not."""
    progs = programs()
    results: dict[str, dict[str, Any]] = {}
    alt_err: str | None = None
    if any(CANDIDATES[c]["needs"] == "alt" for c in cands):
        alt_err = ensure_alt_venv()
    for cand in cands:
        spec = CANDIDATES[cand]
        res: dict[str, Any] = {"builds": {}}
        results[cand] = res
        why = None
        if spec["needs"] == "alt":
            why = alt_err or tools_missing(cand)
            res["version"] = version_of(ALT_PY, spec["module"]) if not alt_err else "?"
        else:
            res["version"] = version_of(REPO_PY, "pyinstaller")
            if res["version"] == "?":
                why = "PyInstaller not installed in .venv (make venv)"
        if why:
            res["skip"] = why
            log(f"{cand}: skipped: {why}")
            continue
        for name, script in progs.items():
            out = SCRATCH / "out" / cand / name
            stamp = out / "build.json"
            cmd, env, exe, ship = spec["build"](name, script, out)
            # A cached build counts while its command and entry script are the same.
            key = hashlib.sha256(json.dumps([cmd, env, script.read_text()]).encode()).hexdigest()
            if stamp.exists() and exe.exists() and not rebuild:
                info = json.loads(stamp.read_text())
                if info.get("key") == key:
                    res["builds"][name] = info
                    continue
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            log(f"{cand}: building {name}")
            t0 = time.monotonic()
            try:
                r = subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, timeout=timeout,
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True)
                tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
                err = None if r.returncode == 0 else f"exit {r.returncode}: " + " | ".join(tail)
            except subprocess.TimeoutExpired:
                err = f"build took over {timeout:.0f} s (stopped)"
            secs = time.monotonic() - t0
            if err is None and not exe.is_file():
                err = f"no {exe} made"
            if err:
                log(f"{cand}: {name}: {err}")
                res["builds"][name] = {"error": err, "seconds": secs}
                continue
            info = {"seconds": round(secs, 1), "exe": str(exe), "ship": str(ship),
                    "size_kib": du_kib(ship), "key": key}
            stamp.write_text(json.dumps(info))
            res["builds"][name] = info
            log(f"{cand}: {name} built in {secs:.0f} s")
    return results


def du_kib(path: Path | str) -> int:
    r = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(r.stdout.split()[0])


# ---------------------------------------------------------------- measurements


def timed_run(argv: list[str]) -> float | None:
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    return dt if r.returncode == 0 else None


def startup(runnable: dict[str, dict[str, str]], runs: int) -> dict[str, dict[str, float]]:
    """Median start-up in ms of `hello` and `vigil --version`, round-robin over candidates."""
    samples: dict[tuple[str, str], list[float]] = {}
    argvs = {"hello": [], "vigil": ["--version"]}
    for exes in runnable.values():  # one warm-up run each, not counted
        for prog in argvs:
            if prog in exes:
                timed_run([exes[prog], *argvs[prog]])
    for _ in range(runs):
        for cand, exes in runnable.items():
            for prog, extra in argvs.items():
                if prog in exes:
                    dt = timed_run([exes[prog], *extra])
                    if dt is not None:
                        samples.setdefault((cand, prog), []).append(dt)
    out: dict[str, dict[str, float]] = {}
    for (cand, prog), vals in samples.items():
        out.setdefault(cand, {})[prog] = statistics.median(vals) * 1000
    return out


def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def smaps(pid: int) -> dict[str, int]:
    vals = {"Rss": 0, "Pss": 0}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in vals:
                vals[key] = int(rest.split()[0])
    return vals


def own_memory(root: int) -> dict[str, int]:
    """Rss/Pss in KiB summed over root and its descendants, less the `sleep` services."""
    total = {"Rss": 0, "Pss": 0, "procs": 0}
    for p in tree(root):
        if comm(p) == "sleep":
            continue
        try:
            m = smaps(p)
        except OSError:
            continue
        total["Rss"] += m["Rss"]
        total["Pss"] += m["Pss"]
        total["procs"] += 1
    return total


def kill_wait(proc: subprocess.Popen) -> None:
    try:
        proc.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def hello_memory(exe: str) -> dict[str, Any]:
    proc = subprocess.Popen([exe, "60"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if line.strip() != "hello":
            return {"error": f"printed {line.strip()!r}"}
        time.sleep(0.3)
        return own_memory(proc.pid)
    finally:
        try:  # the whole session: a onefile child would outlive its launcher
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def pid_check(exe: str) -> dict[str, Any]:
    """Whether the Python code runs in the process that was exec'd."""
    proc = subprocess.Popen([exe, "5"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True, env={})
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        try:
            pid_s, ppid_s, version = line.split()
            pid, ppid = int(pid_s), int(ppid_s)
        except ValueError:
            return {"same_pid": None, "error": f"printed {line.strip()!r}"}
        try:  # started with an empty environment: whatever is there, the freezer put there
            with open(f"/proc/{pid}/environ", "rb") as f:
                added = sorted(kv.split(b"=", 1)[0].decode() for kv in f.read().split(b"\0") if kv)
        except OSError:
            added = None
        return {"same_pid": pid == proc.pid, "launcher": proc.pid, "python_pid": pid,
                "python_ppid": ppid, "env_added": added, "python": version}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def vigil_memory(exe: str, work: Path) -> dict[str, Any]:
    """vigil as PID 1 of a PID namespace with N_UNITS sleep services, read after 2 s."""
    units = work / "units"
    shutil.rmtree(work, ignore_errors=True)
    units.mkdir(parents=True)
    for i in range(N_UNITS):
        (units / f"sleep{i}.toml").write_text(UNIT)
    logs = work / "logs"
    logs.mkdir()
    argv = ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc",
            exe, "--units", str(units), "--log-dir", str(logs), "--control", str(work / "sock")]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(work / "stderr", "w"))
    try:
        time.sleep(2)
        kids = children(proc.pid)
        if not kids:
            return {"error": f"no PID 1 (unshare exit {proc.poll()})"}
        pid1 = kids[0]
        mem = own_memory(pid1)
        mem["services"] = sum(1 for p in tree(pid1) if comm(p) == "sleep")
        if proc.poll() is not None:
            mem["error"] = f"exited {proc.returncode}"
        return mem
    finally:
        kill_wait(proc)


START_MODES = ("bare", "read_only", "no_entropy")


def starts_bare(exe: str, args: list[str], expect: str, mode: str) -> bool | None:
    """Starts with env -i, an empty tmpfs on /dev and on /tmp, in a private mount namespace.

    The builds live under /tmp, so their tree is bound onto /srv first. Mode read_only:
    / (a bind remount: this namespace's mount only) and /tmp are read-only too, and the
    working directory is /: nowhere to unpack to, as under a read-only root at boot.
    Mode no_entropy: every getrandom() fails with EAGAIN (strace injects it), as before
    the kernel's pool is ready; a Python that draws a random hash seed then falls back to
    /dev/urandom, which is not there either. None if strace is missing.
    """
    read_only = mode == "read_only"
    wrap: list[str] = []
    if mode == "no_entropy":
        strace = shutil.which("strace")
        if not strace:
            return None
        wrap = [strace, "-f", "-qq", "-e", "trace=getrandom", "-e", "inject=getrandom:error=EAGAIN"]
    out = SCRATCH / "out"
    inner = "/srv/" + str(Path(exe).relative_to(out))
    steps = [f"mount --bind -o ro '{out}' /srv"]
    if read_only:
        steps += ["mount -o remount,bind,ro /", "mount -t tmpfs -o ro none /tmp"]
    else:
        steps += ["mount -t tmpfs none /tmp"]
    steps += ["mount -t tmpfs none /dev", "cd /", 'exec /usr/bin/env -i "$@"']
    argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
            " && ".join(steps), "sh", *wrap, inner, *args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and expect in r.stdout


# ---------------------------------------------------------------- report


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.1f}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return f"{v}{unit}"


def ratio(v: Any, base: Any) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not base:
        return ""
    return f" ({v / base:.2f}x)"


def both(d: dict[str, bool] | None) -> str | None:
    """'hello / vigil' start results."""
    if not d:
        return None
    return " / ".join(fmt(d.get(k)) for k in ("hello", "vigil"))


def report(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        ("version", lambda r: r.get("version")),
        ("Python it runs (pidcheck)", lambda r: r["pid"]["python"]),
        ("build hello (s)", lambda r: r["builds"].get("hello", {}).get("seconds")),
        ("build vigil (s)", lambda r: r["builds"].get("vigil", {}).get("seconds")),
        ("size hello (KiB)", lambda r: r["builds"].get("hello", {}).get("size_kib")),
        ("size vigil (KiB)", lambda r: r["builds"].get("vigil", {}).get("size_kib")),
        ("start hello (ms)", lambda r: r.get("start", {}).get("hello")),
        ("start vigil --version (ms)", lambda r: r.get("start", {}).get("vigil")),
        ("hello Rss (KiB)", lambda r: r.get("hello_mem", {}).get("Rss")),
        ("hello Pss (KiB)", lambda r: r.get("hello_mem", {}).get("Pss")),
        ("vigil PID 1 Rss (KiB)", lambda r: r.get("vigil_mem", {}).get("Rss")),
        ("vigil PID 1 Pss (KiB)", lambda r: r.get("vigil_mem", {}).get("Pss")),
        ("processes, hello / vigil", lambda r: "{} / {}".format(
            r.get("hello_mem", {}).get("procs", "-"), r.get("vigil_mem", {}).get("procs", "-"))),
        ("services started (of 10)", lambda r: r.get("vigil_mem", {}).get("services")),
        ("Python in exec'd pid", lambda r: r.get("pid", {}).get("same_pid")),
        ("variables it adds to its environ", lambda r: len(r["pid"]["env_added"])),
        ("starts (hello / vigil): env -i, empty /dev, /tmp",
         lambda r: both(r.get("starts", {}).get("bare"))),
        ("  ... and read-only / and /tmp", lambda r: both(r.get("starts", {}).get("read_only"))),
        ("  ... and getrandom() -> EAGAIN", lambda r: both(r.get("starts", {}).get("no_entropy"))),
    ]
    cands = list(results)
    base = results.get(BASE, {})
    table = [["", *cands]]
    for label, get in rows:
        line = [label]
        for c in cands:
            r = results[c]
            if "skip" in r:
                line.append("skipped" if label == "version" else "")
                continue
            try:
                v = get(r)
            except (KeyError, TypeError):
                v = None
            cell = fmt(v)
            if c != BASE and "skip" not in base and label.endswith(("(s)", "(KiB)", "(ms)")):
                try:
                    cell += ratio(v, get(base))
                except (KeyError, TypeError):
                    pass
            line.append(cell)
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = []
    for c, r in results.items():
        if "skip" in r:
            notes.append(f"{c}: skipped: {r['skip']}")
        for prog, b in r.get("builds", {}).items():
            if "error" in b:
                notes.append(f"{c}: {prog} did not build: {b['error']}")
        for key in ("hello_mem", "vigil_mem", "pid"):
            if isinstance(r.get(key), dict) and r[key].get("error"):
                notes.append(f"{c}: {key}: {r[key]['error']}")
        if isinstance(r.get("pid"), dict) and r["pid"].get("same_pid") is False:
            p = r["pid"]
            notes.append(f"{c}: exec'd pid {p['launcher']}, Python ran as pid {p['python_pid']} "
                         f"(parent {p['python_ppid']})")
    for c, r in results.items():
        added = (r.get("pid") or {}).get("env_added")
        if added:
            notes.append(f"{c}: sets in its own environment: {', '.join(added)}")
    notes.append(f"ratios: (x) to {BASE}; memory is summed over the program's own processes")
    return "\n".join(lines + [""] + notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help=f"comma-separated, of {', '.join(CANDIDATES)}")
    p.add_argument("--rebuild", action="store_true", help="ignore the cached builds")
    p.add_argument("--runs", type=int, default=20, help="start-up runs per program (median)")
    p.add_argument("--build-timeout", type=float, default=1200, help="seconds per build")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        p.error("needs root (unshare, mount)")
    cands = [c for c in args.only.split(",") if c] or list(CANDIDATES)
    unknown = set(cands) - set(CANDIDATES)
    if unknown:
        p.error(f"unknown candidate(s): {', '.join(sorted(unknown))}")
    SCRATCH.mkdir(parents=True, exist_ok=True)

    results = build_all(cands, args.rebuild, args.build_timeout)
    runnable = {c: {prog: b["exe"] for prog, b in r["builds"].items() if "exe" in b}
                for c, r in results.items() if "skip" not in r}

    log(f"start-up: {args.runs} runs each")
    for cand, ms in startup(runnable, args.runs).items():
        results[cand]["start"] = ms
    for cand, exes in runnable.items():
        r = results[cand]
        log(f"{cand}: memory, pid and bare-start checks")
        r["starts"] = {mode: {} for mode in START_MODES}
        if "hello" in exes:
            r["hello_mem"] = hello_memory(exes["hello"])
            for mode in START_MODES:
                r["starts"][mode]["hello"] = starts_bare(exes["hello"], [], "hello", mode)
        if "vigil" in exes:
            with tempfile.TemporaryDirectory(dir=SCRATCH) as d:
                r["vigil_mem"] = vigil_memory(exes["vigil"], Path(d))
            for mode in START_MODES:
                r["starts"][mode]["vigil"] = starts_bare(exes["vigil"], ["--version"], "vigil",
                                                         mode)
        if "pidcheck" in exes:
            r["pid"] = pid_check(exes["pidcheck"])

    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
