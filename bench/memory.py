"""Where vigil's PID 1 memory goes, beside a bare interpreter: imports, services, log buffers.

    python bench/memory.py [--services N]     (root: each run is PID 1 of a namespace)

Three views, each measured in this run:
1. Pss by mapping (/proc/PID/smaps) of vigil as PID 1 with 0 and N services (venv:
   python -m vigil.main, as bench/supervisors.py runs it) and of a bare `python3 -I -S`
   that sleeps: libpython and the other libraries are shared and cost the same in both,
   so the difference is the heap (Python's objects) and the anonymous mappings.
2. Per-module import cost: vigil.main's modules imported one by one in the order they
   complete (-X importtime), each one's growth of Python's traced memory (tracemalloc),
   under `-I -S` as the frozen PID 1 runs (no site); a package's own cost is counted
   with its first submodule.
3. Per-service cost: vigil set up in-process (main.Init.setup(), the real loop, services
   forked) with 0 and N services, with `log = "null"` and with `log = "file"` (the log
   pipe and its buffer), traced by tracemalloc; and the same as Pss of the real PID 1.
Prints tables; never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from supervisors import (  # noqa: E402
    SLEEP,
    Namespace,
    base_python,
    memory,
    pss_by_mapping,
    svc_name,
)

VENV_PY = REPO / ".venv" / "bin" / "python"
INIT = REPO / "init"  # on sys.path by hand: -I -S as the frozen PID 1 (no site, no .pth)

# Run in a child: import every module of vigil.main in completion order, each one's
# tracemalloc growth; then vigil's setup with the units in argv[2], and the growth.
TRACED = r'''
import os, sys, time, _tracemalloc  # the C module: tracemalloc.py imports re, enum, pickle
order, units, log_dir, sock = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4]
sys.path.insert(0, sys.argv[5])
_tracemalloc.start()
cost = {}
for name in order:
    if name in sys.modules:
        continue
    before = _tracemalloc.get_traced_memory()[0]
    try:
        __import__(name)
    except ImportError:
        continue
    cost[name] = _tracemalloc.get_traced_memory()[0] - before
from vigil import main
before = _tracemalloc.get_traced_memory()[0]
init = main.Init(main.parse_args(["--units", units, "--log-dir", log_dir, "--control", sock]))
init.setup()
deadline = time.monotonic() + 60
while time.monotonic() < deadline:  # until every unit runs (or 60 s)
    init.loop.call_later(0.05, lambda: None)  # an idle loop sleeps: bound each turn
    init.loop.run_once()
    if all(s.state == "running" for s in init.sup.services.values()):
        break
setup = _tracemalloc.get_traced_memory()[0] - before
import json
print(json.dumps({"imports": cost, "setup": setup,
                  "running": sum(s.state == "running" for s in init.sup.services.values())}))
sys.stdout.flush()
os._exit(0)
'''


def import_order() -> list[str]:
    """vigil.main's modules in the order their imports complete (leaves first)."""
    r = subprocess.run([str(VENV_PY), "-I", "-S", "-X", "importtime", "-c",
                        f"import sys; sys.path.insert(0, {str(INIT)!r}); import vigil.main"],
                       capture_output=True, text=True, check=True)
    names = []
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.append(name)
    return names


def write_units(d: Path, n: int, log: str) -> Path:
    units = d / "units"
    units.mkdir(parents=True)
    exec_ = ", ".join(json.dumps(a) for a in SLEEP)
    for i in range(n):
        (units / f"{svc_name(i)}.toml").write_text(
            f'[service]\nexec = [{exec_}]\nlog = "{log}"\n')
    (d / "logs").mkdir()
    return units


def traced(order: list[str], n: int, log: str, work: Path) -> dict:
    """The in-process run, inside a PID namespace so that its services go with it."""
    d = work / f"traced-{n}-{log}"
    units = write_units(d, n, log)
    r = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--kill-child",
         str(VENV_PY), "-I", "-S", "-c", TRACED, ",".join(order), str(units),
         str(d / "logs"), str(d / "sock"), str(INIT)],
        capture_output=True, text=True, timeout=180)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"traced run failed: {r.stderr[-2000:]}")
    return json.loads(lines[-1])


def real_pid1(n: int, log: str, work: Path) -> tuple[dict, dict]:
    """(Pss/Uss, Pss by mapping) of vigil as PID 1 of a namespace with n services."""
    d = work / f"pid1-{n}-{log}"
    units = write_units(d, n, log)
    argv = [str(REPO / ".venv" / "bin" / "vigil"), "--units", str(units),
            "--log-dir", str(d / "logs"), "--control", str(d / "sock")]
    with Namespace(argv, d / "pid1.log") as ns:
        if n:
            ns.wait_running(n, n + 1, 120)
        ns.settle()
        return memory(ns.pid), pss_by_mapping(ns.pid)


def bare_python(work: Path) -> tuple[dict, dict]:
    argv = [base_python(), "-I", "-S", "-c", "import time\nwhile True: time.sleep(3600)"]
    with Namespace(argv, work / "bare.log") as ns:
        ns.settle()
        return memory(ns.pid), pss_by_mapping(ns.pid)


def table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                        for i, c in enumerate(r)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=100)
    p.add_argument("--top", type=int, default=25, help="modules listed by import cost")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("memory.py: needs root (unshare --pid)", file=sys.stderr)
        return 2
    n = args.services
    with tempfile.TemporaryDirectory(prefix="vigil-mem-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        bare, bare_map = bare_python(work)
        pid1 = {(k, log): real_pid1(k, log, work) for k in (0, n) for log in ("null", "file")
                if not (k == 0 and log == "file")}
        order = import_order()
        runs = {(k, log): traced(order, k, log, work) for k in (0, n)
                for log in ("null", "file") if not (k == 0 and log == "file")}
        took = time.monotonic() - t0

    print(f"1. PID 1 Pss by mapping (KiB): bare python3 -I -S, vigil (venv) with 0 and {n} "
          "services (log = null)")
    cols = {"bare python": bare_map, "vigil, 0": pid1[(0, "null")][1],
            f"vigil, {n}": pid1[(n, "null")][1], f"vigil, {n}, log=file": pid1[(n, "file")][1]}
    kinds = sorted({k for m in cols.values() for k in m},
                   key=lambda k: -max(m.get(k, 0) for m in cols.values()))
    rows = [["", *cols]]
    rows += [[k, *(str(m.get(k, 0)) for m in cols.values())] for k in kinds]
    rows.append(["total Pss", *(str(sum(m.values())) for m in cols.values())])
    rows.append(["Uss (private)", str(bare["uss"]),
                 *(str(pid1[key][0]["uss"]) for key in ((0, "null"), (n, "null"), (n, "file")))])
    table(rows)
    pss_n = pid1[(n, "null")][0]["pss"]
    print(f"ratio to bare python: vigil with {n} services {pss_n / bare['pss']:.2f}x "
          f"({pss_n} vs {bare['pss']} KiB)")

    imports = runs[(0, "null")]["imports"]
    total = sum(imports.values())
    vig = sum(v for k, v in imports.items() if k == "vigil" or k.startswith("vigil."))
    print(f"\n2. Import cost (tracemalloc, KiB): vigil.main and its {len(imports)} modules "
          f"{total / 1024:.0f} in all, vigil's own {vig / 1024:.0f}, the standard "
          f"library's {(total - vig) / 1024:.0f}; the {args.top} largest:")
    rows = [["module", "KiB"]]
    for name, size in sorted(imports.items(), key=lambda kv: -kv[1])[: args.top]:
        rows.append([name, f"{size / 1024:.0f}"])
    table(rows)

    print(f"\n3. Per service (KiB each, {n} services against 0)")
    rows = [["", "traced (Python objects)", "Pss of PID 1"]]
    for log in ("null", "file"):
        traced_each = (runs[(n, log)]["setup"] - runs[(0, "null")]["setup"]) / n / 1024
        pss_each = (pid1[(n, log)][0]["pss"] - pid1[(0, "null")][0]["pss"]) / n
        rows.append([f"log = {log}", f"{traced_each:.1f}", f"{pss_each:.1f}"])
    table(rows)
    running = {f"{k[0]}/{k[1]}": r["running"] for k, r in runs.items()}
    print(f"(in-process runs, units running: {running}; run took {took:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
