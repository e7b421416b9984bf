"""Boot time and PID 1 memory, vigil vs busybox init, on otherwise identical initramfs images.

    python -m bench.boot [--runs N]

Per boot: kernel start to PID 1 (the kernel's own timestamp on "Run ... as init
process"), PID 1 to the login prompt and poweroff to QEMU's exit (host clock, from
when the console bytes arrived), PID 1's Rss/Pss (/proc/1/smaps_rollup in the guest).
Besides: the frozen hello program as the floor, its Rss/Pss in the same guest and the
start-up time of both frozen programs on the host. Medians over the runs; a table with
ratios. Under TCG (no working KVM) every number is slower than on hardware; the ratios
are what to compare.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from initramfs import build as image_build  # noqa: E402
from vm import accel, kernel  # noqa: E402
from vm.qemu import Config, Console, Exit  # noqa: E402

OUT = REPO / "build" / "bench"
FROZEN = REPO / "build" / "frozen"
INITS = {"busybox": "/sbin/init", "vigil": "/sbin/vigil"}


def ensure_frozen() -> None:
    for name in ("vigil", "hello"):
        if not (FROZEN / name / name).is_file():
            subprocess.run([sys.executable, str(REPO / "init/freeze/freeze.py"), name], check=True)


def images() -> dict[str, Path]:
    """Both images with the hello tree in them; they differ only in /sbin/init & co."""
    out = {}
    for init in INITS:
        path = OUT / f"initramfs-{init}.cpio.gz"
        image_build.build(path, init=init, frozen=FROZEN / "vigil", hello=FROZEN / "hello")
        out[init] = path
    return out


def smaps(console: Console, pid: str) -> tuple[int, int]:
    out = console.check(f"cat /proc/{pid}/smaps_rollup")
    rss = re.search(r"^Rss:\s+(\d+) kB", out, re.MULTILINE)
    pss = re.search(r"^Pss:\s+(\d+) kB", out, re.MULTILINE)
    if not (rss and pss):
        raise RuntimeError(f"no Rss/Pss in {out!r}")
    return int(rss.group(1)), int(pss.group(1))


def boot_once(vmlinuz: Path, initrd: Path, init: str, log: Path) -> dict[str, float]:
    cfg = Config(vmlinuz, initrd, rdinit=INITS[init])
    with Console(cfg, log_path=log) as c:
        m = c.expect(r"^\[ *(\d+\.\d+)\] Run \S+ as init process", timeout=180)
        kernel_to_init = float(m.group(1))
        pid1_seen = c.arrived(m.end() - 1)
        c.noise.append(r"^vigil: .*\n")
        m = c.expect(r"login: ", timeout=240)
        pid1_to_login = c.arrived(m.end() - 1) - pid1_seen
        c.pos = m.start()  # login() waits for the same prompt
        c.login(timeout=60)
        rss, pss = smaps(c, "1")
        # The floor: a frozen program that only starts and sleeps, in the same guest.
        pid = c.check("/usr/lib/hello/hello 60 >/dev/null & echo $!").strip()
        c.check("sleep 3")  # let it finish starting
        hello_rss, hello_pss = smaps(c, pid)
        c.check(f"kill {pid}")
        sent = time.monotonic()
        c.sendline("poweroff")
        how = c.wait_exit(120)
        poweroff_to_exit = time.monotonic() - sent
        if how is not Exit.POWEROFF:  # reported as n/a rather than a false number
            print(f"{init}: poweroff ended as {how.value}; see {log}", file=sys.stderr)
            poweroff_to_exit = float("nan")
    return {
        "kernel_to_init": kernel_to_init,
        "init_to_login": pid1_to_login,
        "poweroff_to_exit": poweroff_to_exit,
        "rss": rss,
        "pss": pss,
        "hello_rss": hello_rss,
        "hello_pss": hello_pss,
    }


def host_startup(runs: int) -> dict[str, float]:
    """Median wall time to start and exit: hello, and vigil as the client (--help)."""
    with tempfile.TemporaryDirectory() as tmp:
        client = Path(tmp) / "vigilctl"
        client.symlink_to(FROZEN / "vigil" / "vigil")
        cmds = {"hello": [str(FROZEN / "hello" / "hello")], "vigilctl": [str(client), "--help"]}
        result = {}
        for name, cmd in cmds.items():
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - t)
            result[name] = statistics.median(times)
    return result


def ratio(a: float, b: float) -> str:
    return f"{b / a:.2f}x" if a and a == a and b == b else "-"  # x == x is False for NaN


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1, help="boots per init (median)")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    k = kernel.fetch()
    ensure_frozen()
    imgs = images()
    results: dict[str, list[dict[str, float]]] = {init: [] for init in INITS}
    for run in range(args.runs):
        for init in INITS:  # alternate, so a slow spell of the host hits both
            log = OUT / f"{init}-{run}.log"
            results[init].append(boot_once(k.vmlinuz, imgs[init], init, log))

    def med(init: str, key: str) -> float:
        return statistics.median(r[key] for r in results[init])

    print(f"boot, accel={accel.accel(k.vmlinuz)}, kernel {k.version}, median of {args.runs} run(s)")
    print(f"{'':28}{'busybox':>12}{'vigil':>12}{'vigil/bb':>10}")
    for key, label, unit in (
        ("kernel_to_init", "kernel start -> PID 1", "s"),
        ("init_to_login", "PID 1 -> login prompt", "s"),
        ("poweroff_to_exit", "poweroff -> QEMU exit", "s"),
        ("rss", "PID 1 Rss", "kB"),
        ("pss", "PID 1 Pss", "kB"),
    ):
        b, v = med("busybox", key), med("vigil", key)
        fmt = "{:>12.2f}" if unit == "s" else "{:>12.0f}"
        print(f"{label + ' (' + unit + ')':28}{fmt.format(b)}{fmt.format(v)}{ratio(b, v):>10}")

    hello_rss, hello_pss = med("vigil", "hello_rss"), med("vigil", "hello_pss")
    startup = host_startup(max(5, args.runs))
    print(f"\nfrozen floor{'':16}{'hello':>12}{'vigil':>12}{'vigil/hello':>12}")
    print(
        f"{'Rss in guest (kB)':28}{hello_rss:>12.0f}{med('vigil', 'rss'):>12.0f}"
        f"{ratio(hello_rss, med('vigil', 'rss')):>12}"
    )
    print(
        f"{'Pss in guest (kB)':28}{hello_pss:>12.0f}{med('vigil', 'pss'):>12.0f}"
        f"{ratio(hello_pss, med('vigil', 'pss')):>12}"
    )
    print(
        f"{'start-up on host (ms)':28}{startup['hello'] * 1000:>12.0f}"
        f"{startup['vigilctl'] * 1000:>12.0f}"
        f"{ratio(startup['hello'], startup['vigilctl']):>12}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
