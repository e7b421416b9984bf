"""The soak: vigil as PID 1 of a PID namespace under churn for a while (default 10 minutes),
with PID 1's Pss, fd count and thread count sampled every 10 s. They must not grow: the
series and its least-squares slope are printed, and the run fails if one grows by more
than a generous bound.

Churn, all the time: services started and stopped, one restarted, crash loops, unit files
written and reloaded, log lines flowing (and rotating), status/list/logs/dump queries
(raw and through vigilctl), and a re-exec at each quarter of the run.

    python bench/soak.py [--minutes M] [--every S]      (make bench-soak; needs root)
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "ns"))

import probes  # noqa: E402 - from tests/ns, beside the fixture's Vigil
from conftest import SKIP, Vigil  # noqa: E402

UNITS = {
    **{f"chatty{i}": """[service]
exec = ["/bin/sh", "-c",
        "i=0; while :; do echo chatty line $i of a soak; i=$((i+1)); sleep 0.01; done"]
log_max_size = 65536
log_keep = 2
""" for i in range(5)},
    **{f"crashy{i}": """[service]
exec = ["/bin/sh", "-c", "sleep 0.3; echo bye; exit 3"]
restart = "always"
restart_delay = 0.5
restart_delay_max = 0.5
start_limit_burst = 100000
""" for i in range(5)},
    **{f"steady{i}": '[service]\nexec = ["/bin/sleep", "100000"]\n' for i in range(10)},
    **{f"toggle{i}": '[unit]\nenabled = false\n[service]\nexec = ["/bin/sleep", "100000"]\n'
       for i in range(5)},
}
# Bounds that say "does not grow" for a run of this length, with room for noise: fds all
# higher in the second half than in the first, or a second thread, is a leak. Pss wanders
# (shared pages are divided among the children of the moment); the heap (Anonymous) is
# what a leak grows.
ANON_SLOPE_BOUND = 20.0   # KiB per minute, after the warm-up


def churn(v: Vigil, rng: random.Random, step: int) -> None:
    sock = v.sock
    name = f"toggle{rng.randrange(5)}"
    probes.timed_request(sock, rng.choice(["start", "stop"]), [name])
    if step % 3 == 0:
        probes.timed_request(sock, "restart", [f"steady{rng.randrange(10)}"])
    for verb, args in (("status", []), ("list", []), ("logs", [f"chatty{rng.randrange(5)}"]),
                       ("status", [f"crashy{rng.randrange(5)}"]), ("dump", [])):
        probes.timed_request(sock, verb, args)
    if step % 10 == 0:
        k = rng.randrange(3)
        (v.units / f"dyn{k}.toml").write_text(
            f'[service]\nexec = ["/bin/sleep", "{rng.randrange(1000, 2000)}"]\n')
        if rng.random() < 0.3:
            (v.units / f"dyn{k}.toml").unlink()
        probes.timed_request(sock, "reload")
    if step % 20 == 0:
        v.ctl("status")  # and a real vigilctl now and then


def run(minutes: float, every: float) -> int:
    if SKIP:
        print(f"soak skipped: {SKIP}")
        return 0
    v = Vigil(Path(tempfile.mkdtemp(prefix="vigil-soak-")))
    for name, text in UNITS.items():
        v.unit(name, text)
    v.start()
    rng = random.Random(1)
    try:
        v.wait_for(lambda: v.ctl("status").returncode == 0, 30, "vigil up")
        pid = v.host_pid()
        t0 = time.monotonic()
        end = t0 + minutes * 60
        reexecs = [t0 + minutes * 60 * q / 4 for q in (1, 2, 3)]
        series: list[tuple[float, int, int, int, int]] = []
        next_sample, step = t0, 0
        print(f"{'t (s)':>7} {'Pss KiB':>9} {'Anon KiB':>9} {'fds':>5} {'threads':>8}")
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_sample:
                memory = probes.memory_kib(pid)
                series.append((now - t0, memory["Pss"], memory["Anonymous"],
                               probes.fd_count(pid), probes.thread_count(pid)))
                print("{:7.0f} {:9} {:9} {:5} {:8}".format(*series[-1]), flush=True)
                next_sample += every
            if reexecs and now >= reexecs[0]:
                reexecs.pop(0)
                probes.timed_request(v.sock, "reexec")
                time.sleep(1)
                print(f"{now - t0:7.0f}  re-exec", flush=True)
            churn(v, rng, step)
            step += 1
            time.sleep(0.2)
        assert v.host_pid() == pid and v.proc.poll() is None, "vigil is still PID 1"
        cpu = probes.cpu_seconds(pid)
    finally:
        v.stop()
        subprocess.run(["rm", "-rf", str(v.tmp)])
    return report(series, minutes, step, cpu)


def report(series, minutes: float, steps: int, cpu: float) -> int:
    # The first minute (a quarter of a short run) warms up: log files opened, toggled
    # units' pipes made, the dynamic units added. Slopes are of what follows.
    warm = min(60.0, minutes * 15)
    series = [s for s in series if s[0] >= warm]
    print(f"soak: {minutes:g} min, {steps} churn steps, PID 1 CPU {cpu:.0f}s in all; "
          f"{len(series)} samples after {warm:.0f}s of warm-up:")
    slopes = {}
    for i, (name, unit) in enumerate((("Pss", "KiB"), ("Anon", "KiB"), ("fds", ""),
                                      ("threads", "")), 1):
        values = [s[i] for s in series]
        slopes[name] = probes.slope([(s[0], s[i]) for s in series]) * 60
        print(f"  {name:<8}{values[0]} -> {values[-1]} {unit} (min {min(values)}, max "
              f"{max(values)}), slope {slopes[name]:+.2f} {unit}/min".replace("  /", " /"))
    half = len(series) // 2
    grows = []
    if slopes["Anon"] > ANON_SLOPE_BOUND:
        grows.append("the heap")
    if min(s[3] for s in series[half:]) > max(s[3] for s in series[:half]):
        grows.append("fds")  # every late sample above every early one
    if max(s[4] for s in series) > 1:
        grows.append("threads")
    print("  verdict: " + ("grows: " + ", ".join(grows) if grows else "flat"))
    return 1 if grows else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--every", type=float, default=10, help="seconds between samples")
    args = parser.parse_args()
    return run(args.minutes, args.every)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
