"""Boot time and PID 1 memory on the Debian test disk: vigil vs sysvinit vs systemd.

    python bench/debian_boot.py [--runs N] [--frozen DIR]

The same disk (`make image`, booted with -snapshot so it stays as built), kernel and
initramfs for all three; only init= differs. The initramfs is vigil's: it mounts
root=/dev/vda and execs init=, so each init starts from the same switched root.
Per boot: kernel start -> initramfs PID 1 (the kernel's timestamp), PID 1 -> the switch
(vigil's "switching to" line), switch -> serial login prompt, poweroff -> QEMU exit (host
clock, from when the console bytes arrived), and the real PID 1's Rss/Pss
(/proc/1/smaps_rollup, logged in as root). Medians; ratios against vigil. Under TCG
every number is slower than on hardware; compare the ratios.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vm import accel, image, kernel  # noqa: E402
from vm.qemu import Config, Console, Exit  # noqa: E402

OUT = REPO / "build" / "bench"
# init= and the command that powers the machine off under it. The disk's poweroff is
# vigil's client (make install put it there); sysvinit's own init acts as telinit when
# it is not PID 1, and systemd-sysv (systemd's poweroff) is not installed beside sysvinit.
INITS = {
    "vigil": ("/sbin/vigil", "poweroff"),
    "sysvinit": ("/sbin/init", "/sbin/init 0"),
    "systemd": ("/lib/systemd/systemd", "systemctl poweroff"),
}
# The test fstab's missing disk without nofail sends systemd to emergency mode (where
# vigil and sysvinit report it and go on): masked for systemd, so all three reach a login.
EXTRA_APPEND = {"systemd": "systemd.mask=mnt-missing.mount"}
SWITCH_LINE = r"initramfs: \S+ \(\S+\) mounted on /newroot; switching to \S+"


def smaps(console: Console) -> tuple[int, int]:
    out = console.check("cat /proc/1/smaps_rollup")
    rss = re.search(r"^Rss:\s+(\d+) kB", out, re.MULTILINE)
    pss = re.search(r"^Pss:\s+(\d+) kB", out, re.MULTILINE)
    if not (rss and pss):
        raise RuntimeError(f"no Rss/Pss in {out!r}")
    return int(rss.group(1)), int(pss.group(1))


def boot_once(vmlinuz: Path, initrd: Path, disks: image.Disks, name: str,
              log: Path) -> dict[str, float]:
    init, poweroff = INITS[name]
    append = f"root=/dev/vda init={init} {EXTRA_APPEND.get(name, '')}".strip()
    cfg = Config(vmlinuz, initrd, append=append,
                 disks=[disks.root, disks.data], snapshot=True, extra=image.nic_args())
    with Console(cfg, log_path=log) as c:
        m = c.expect(r"^\[ *(\d+\.\d+)\] Run \S+ as init process", timeout=180)
        kernel_to_init = float(m.group(1))
        pid1_seen = c.arrived(m.end() - 1)
        m = c.expect(SWITCH_LINE, timeout=240)
        switched = c.arrived(m.end() - 1)
        c.noise.append(r"^vigil: .*\n")
        m = c.expect(r"login: ", timeout=300)
        to_login = c.arrived(m.end() - 1) - switched
        c.pos = m.start()  # login() waits for the same prompt
        c.login(timeout=60)
        comm = c.check("cat /proc/1/comm").strip()
        rss, pss = smaps(c)
        sent = time.monotonic()
        c.sendline(poweroff)
        how = c.wait_exit(180)
        poweroff_to_exit = time.monotonic() - sent
        if how is not Exit.POWEROFF:  # reported as n/a rather than a false number
            print(f"{name}: poweroff ended as {how.value}; see {log}", file=sys.stderr)
            poweroff_to_exit = float("nan")
    print(f"{name}: PID 1 is {comm!r}; log {log}", file=sys.stderr)
    return {"kernel_to_init": kernel_to_init, "init_to_switch": switched - pid1_seen,
            "switch_to_login": to_login, "poweroff_to_exit": poweroff_to_exit,
            "rss": rss, "pss": pss}


def ratio(base: float, other: float) -> str:
    return f"{other / base:.2f}x" if base and base == base and other == other else "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1, help="boots per init (median)")
    p.add_argument("--frozen", type=Path, default=REPO / "build" / "frozen" / "vigil",
                   help="the frozen vigil tree for the initramfs")
    p.add_argument("--only", action="append", choices=sorted(INITS),
                   help="boot only these (repeatable)")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    k = kernel.fetch()
    disks = image.build()
    initrd = image.build_initramfs(OUT / "initramfs-disk.cpio.gz", frozen=args.frozen)
    names = [n for n in INITS if not args.only or n in args.only]
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for run in range(args.runs):
        for name in names:  # alternate, so a slow spell of the host hits each
            results[name].append(boot_once(k.vmlinuz, initrd, disks, name,
                                           OUT / f"debian-{name}-{run}.log"))

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"Debian disk boot, accel={accel.accel(k.vmlinuz)}, kernel {k.version}, "
          f"median of {args.runs} run(s)")
    header = "".join(f"{n:>11}" for n in names)
    others = [n for n in names if n != "vigil"]
    ratios = "".join(f"{n + '/vigil':>15}" for n in others) if "vigil" in names else ""
    print(f"{'':30}{header}{ratios}")
    for key, label, unit in (
        ("kernel_to_init", "kernel start -> PID 1", "s"),
        ("init_to_switch", "PID 1 -> switch root", "s"),
        ("switch_to_login", "switch root -> login prompt", "s"),
        ("poweroff_to_exit", "poweroff -> QEMU exit", "s"),
        ("rss", "PID 1 Rss", "kB"),
        ("pss", "PID 1 Pss", "kB"),
    ):
        fmt = "{:>11.2f}" if unit == "s" else "{:>11.0f}"
        row = "".join(fmt.format(med(n, key)) for n in names)
        if "vigil" in names:
            row += "".join(f"{ratio(med('vigil', key), med(n, key)):>15}" for n in others)
        print(f"{label + ' (' + unit + ')':30}{row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
