"""Boot time and PID 1 memory, vigil vs busybox init, on otherwise identical initramfs images.

    python -m bench.boot [--runs N] [--also TREE] [--hello TREE] [--icount SHIFT]

Per boot: kernel start to PID 1 (the kernel's own timestamp on "Run ... as init
process"), PID 1 to its first line (vigil only: the frozen interpreter's start and
vigil's imports), PID 1 to the login prompt, `poweroff` typed to vigil's "stopping
services" line (the client's start and its request) and poweroff to QEMU's exit (host
clock, from when the console bytes arrived), PID 1's Rss/Pss (/proc/1/smaps_rollup in
the guest), and the time of 5 `vigilctl status` runs in the guest (busybox's `time`).
From dmesg, in the guest's own clock: PID 1 to vigil's first line, to its "starting as pid 1"
and to its "started:" line; with --icount SHIFT the guest clock follows the instructions
run, so these rows repeat to about 10 ms whatever else the host does (a boot takes a few
times longer). Besides: the frozen hello program as the floor, its Rss/Pss in the same guest and the
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


def columns(also: list[Path]) -> dict[str, tuple[str, Path]]:
    """label -> (init, frozen vigil tree): busybox, vigil, and vigil with each other tree."""
    cols = {"busybox": ("busybox", FROZEN / "vigil"), "vigil": ("vigil", FROZEN / "vigil")}
    for tree in also:
        cols[f"vigil {tree.parent.name}"] = ("vigil", tree)
    return cols


def images(cols: dict[str, tuple[str, Path]], hello: Path) -> dict[str, Path]:
    """The images, each with the hello tree in it; they differ only in /sbin/init & co
    (and in the frozen tree)."""
    out = {}
    for label, (init, tree) in cols.items():
        path = OUT / f"initramfs-{label.replace(' ', '-')}.cpio.gz"
        image_build.build(path, init=init, frozen=tree, hello=hello)
        out[label] = path
    return out


def smaps(console: Console, pid: str) -> tuple[int, int]:
    out = console.check(f"cat /proc/{pid}/smaps_rollup")
    rss = re.search(r"^Rss:\s+(\d+) kB", out, re.MULTILINE)
    pss = re.search(r"^Pss:\s+(\d+) kB", out, re.MULTILINE)
    if not (rss and pss):
        raise RuntimeError(f"no Rss/Pss in {out!r}")
    return int(rss.group(1)), int(pss.group(1))


# vigil's milestones in the kernel log (its lines go to /dev/kmsg too), guest clock.
MILESTONES = (("guest_first_line", r"vigil: "), ("guest_starting", r"vigil: vigil .* starting"),
              ("guest_started", r"vigil: started: "))


def guest_clock(c: Console) -> dict[str, float]:
    """Seconds from "Run ... as init process" to each of vigil's milestones, read from
    dmesg: the guest's own clock, which with --icount advances with the instructions run
    (the same boot gives the same figures to 10 ms, whatever the host is doing)."""
    out = c.check("dmesg | sed 's/^/@/'")  # prefixed: the harness drops kernel lines
    stamps = [(float(t), line) for t, line in
              re.findall(r"^@\[ *(\d+\.\d+)\] (.*)$", out, re.MULTILINE)]
    start = next((t for t, line in stamps if re.search(r"Run \S+ as init process", line)),
                 None)
    res = {key: float("nan") for key, _ in MILESTONES}
    for key, rx in MILESTONES:
        t = next((t for t, line in stamps if re.match(rx, line)), None)
        if start is not None and t is not None:
            res[key] = t - start
    return res


def boot_once(vmlinuz: Path, initrd: Path, init: str, log: Path,
              icount: int | None = None) -> dict[str, float]:
    extra = ["-icount", f"shift={icount}"] if icount is not None else []
    cfg = Config(vmlinuz, initrd, rdinit=INITS[init], extra=extra)
    with Console(cfg, log_path=log) as c:
        m = c.expect(r"^\[ *(\d+\.\d+)\] Run \S+ as init process", timeout=180)
        kernel_to_init = float(m.group(1))
        pid1_seen = c.arrived(m.end() - 1)
        first_line = float("nan")
        if init == "vigil":
            m1 = c.expect(r"^vigil: ", timeout=180)
            first_line = c.arrived(m1.end() - 1) - pid1_seen
            c.pos = m.end()  # the login prompt may come before or after it
        c.noise.append(r"^vigil: .*\n")
        m = c.expect(r"login: ", timeout=240)
        pid1_to_login = c.arrived(m.end() - 1) - pid1_seen
        c.pos = m.start()  # login() waits for the same prompt
        c.login(timeout=60)
        guest = guest_clock(c)
        rss, pss = smaps(c, "1")
        # The floor: a frozen program that only starts and sleeps, in the same guest.
        pid = c.check("/usr/lib/hello/hello 60 >/dev/null & echo $!").strip()
        c.check("sleep 3")  # let it finish starting
        hello_rss, hello_pss = smaps(c, pid)
        c.check(f"kill {pid}")
        status_5 = float("nan")
        if init == "vigil":
            out = c.check("time sh -c 'for i in 1 2 3 4 5; do vigilctl status getty@ttyS0 "
                          ">/dev/null; done'")
            t = re.search(r"real\s+(\d+)m\s*([\d.]+)s", out)
            status_5 = int(t.group(1)) * 60 + float(t.group(2)) if t else float("nan")
        mark = len(c.text)
        sent = time.monotonic()
        c.sendline("poweroff")
        how = c.wait_exit(120)
        poweroff_to_exit = time.monotonic() - sent
        stopping = float("nan")
        m2 = re.search(r"poweroff: stopping services", c.text[mark:])
        if m2:
            stopping = c.arrived(mark + m2.end() - 1) - sent
        if how is not Exit.POWEROFF:  # reported as n/a rather than a false number
            print(f"{init}: poweroff ended as {how.value}; see {log}", file=sys.stderr)
            poweroff_to_exit = float("nan")
    return {
        "kernel_to_init": kernel_to_init,
        "init_to_first_line": first_line,
        "init_to_login": pid1_to_login,
        "poweroff_to_stopping": stopping,
        "poweroff_to_exit": poweroff_to_exit,
        "rss": rss,
        "pss": pss,
        "hello_rss": hello_rss,
        "hello_pss": hello_pss,
        "status_x5": status_5,
        **guest,
    }


def host_startup(runs: int, trees: dict[str, Path], hello: Path) -> dict[str, float]:
    """Median wall time to start and exit on the host: hello, and each tree's client as a
    user runs it (its vigilctl program, or the multi-call program under that name)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {"hello": [str(hello / "hello")]}
        for label, tree in trees.items():
            client = tree / "vigilctl"
            if not client.is_file():
                client = Path(tmp) / label.replace(" ", "-") / "vigilctl"
                client.parent.mkdir()
                client.symlink_to(tree / "vigil")
            cmds[label] = [str(client), "--help"]
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(runs):  # in turn, so that a slow spell hits them all
            for name, cmd in cmds.items():
                t = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def ratio(a: float, b: float) -> str:
    return f"{b / a:.2f}x" if a and a == a and b == b else "-"  # x == x is False for NaN


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1, help="boots per init (median)")
    p.add_argument("--also", type=Path, action="append", default=[],
                   help="another frozen vigil tree, booted as one more column (before/after)")
    p.add_argument("--hello", type=Path, default=FROZEN / "hello",
                   help="the frozen hello tree, the floor (default build/frozen/hello)")
    p.add_argument("--icount", type=int, metavar="SHIFT",
                   help="QEMU -icount shift=SHIFT: a guest clock of 2^SHIFT ns per "
                        "instruction, so the guest-clock rows repeat from run to run")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    k = kernel.fetch()
    ensure_frozen()
    cols = columns(args.also)
    imgs = images(cols, args.hello)
    results: dict[str, list[dict[str, float]]] = {label: [] for label in cols}
    for run in range(args.runs):
        for label, (init, _tree) in cols.items():  # in turn: a slow spell hits them all
            log = OUT / f"{label.replace(' ', '-')}-{run}.log"
            results[label].append(boot_once(k.vmlinuz, imgs[label], init, log, args.icount))

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in results[label])

    vigils = [label for label in cols if label != "busybox"]
    heads = [*cols, *(f"{v}/bb" for v in vigils)]
    w = max(12, *(len(h) for h in heads)) + 2

    def line(label: str, cells: list[str]) -> None:
        print(f"{label:28}" + "".join(f"{c:>{w}}" for c in cells))

    icount = f", -icount shift={args.icount}" if args.icount is not None else ""
    print(f"boot, accel={accel.accel(k.vmlinuz)}{icount}, kernel {k.version}, "
          f"median of {args.runs} run(s)")
    line("", heads)
    for key, label, unit in (
        ("kernel_to_init", "kernel start -> PID 1", "s"),
        ("init_to_first_line", "PID 1 -> its first line", "s"),
        ("init_to_login", "PID 1 -> login prompt", "s"),
        ("poweroff_to_stopping", "poweroff -> stopping svcs", "s"),
        ("poweroff_to_exit", "poweroff -> QEMU exit", "s"),
        ("status_x5", "5x vigilctl status, guest", "s"),
        ("guest_first_line", "guest clock: -> 1st line", "s"),
        ("guest_starting", "guest clock: -> 'starting'", "s"),
        ("guest_started", "guest clock: -> 'started'", "s"),
        ("rss", "PID 1 Rss", "kB"),
        ("pss", "PID 1 Pss", "kB"),
    ):
        fmt = "{:.2f}" if unit == "s" else "{:.0f}"
        b = med("busybox", key)
        line(f"{label} ({unit})", [fmt.format(med(c, key)) for c in cols]
             + [ratio(b, med(v, key)) for v in vigils])

    startup = host_startup(max(5, args.runs), {v: cols[v][1] for v in vigils}, args.hello)
    print()
    line("frozen floor", ["hello", *vigils, *(f"{v}/hello" for v in vigils)])
    for key, label in (("rss", "Rss in guest (kB)"), ("pss", "Pss in guest (kB)")):
        floor = med(vigils[0], "hello_" + key)
        line(label, [f"{floor:.0f}", *(f"{med(v, key):.0f}" for v in vigils),
                     *(ratio(floor, med(v, key)) for v in vigils)])
    line("client start-up, host (ms)",
         [f"{startup['hello'] * 1000:.0f}", *(f"{startup[v] * 1000:.0f}" for v in vigils),
          *(ratio(startup["hello"], startup[v]) for v in vigils)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
