"""Boot time and PID 1 memory on the Debian test disk: vigil vs sysvinit vs systemd.

    python bench/debian_boot.py [--runs N] [--frozen DIR]

The same disk (`make image`, booted with -snapshot so it stays as built), kernel and
initramfs for all three; only init= differs. The initramfs is vigil's: it mounts
root=/dev/vda and execs init=, so each init starts from the same switched root. The disk
runs Debian's sshd, cron and rsyslog (and ifupdown's networking for the NIC): vigil and
systemd from their systemd units, sysvinit from their init.d scripts.

Per boot: kernel start -> initramfs PID 1 (the kernel's timestamp), PID 1 -> the switch
(vigil's "switching to" line), switch -> serial login prompt, poweroff -> QEMU exit (host
clock, from when the console bytes arrived), and the real PID 1's Rss/Pss
(/proc/1/smaps_rollup, logged in as root). From the kernel's handover (initramfs PID 1)
to each daemon being ready, measured the same way under every init:
  sshd     its SSH banner on port 22, polled from the host through a QEMU port forward;
  rsyslog  the time stamp of its own "start" line in /var/log/syslog (the guest's wall
           clock, turned into time since boot with the offset read after login);
  cron     /run/cron-reboot-uptime, written by the disk's @reboot job (cron read its
           crontabs and runs jobs): /proc/uptime at that moment.
Medians; ratios against vigil. Under TCG every number is slower than on hardware; compare
the ratios.
"""

from __future__ import annotations

import argparse
import datetime
import re
import selectors
import socket
import statistics
import sys
import threading
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
# The mask makes local-fs.target's start fail, and with it what only local-fs.target pulls
# in, systemd-remount-fs among them: / stayed read-only (rsyslog and cron could not write),
# so that one is pulled in from the command line.
EXTRA_APPEND = {"systemd": "systemd.mask=mnt-missing.mount "
                           "systemd.wants=systemd-remount-fs.service"}
SWITCH_LINE = r"initramfs: \S+ \(\S+\) mounted on /newroot; switching to \S+"


def smaps(console: Console) -> tuple[int, int]:
    out = console.check("cat /proc/1/smaps_rollup")
    rss = re.search(r"^Rss:\s+(\d+) kB", out, re.MULTILINE)
    pss = re.search(r"^Pss:\s+(\d+) kB", out, re.MULTILINE)
    if not (rss and pss):
        raise RuntimeError(f"no Rss/Pss in {out!r}")
    return int(rss.group(1)), int(pss.group(1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BannerWatch(threading.Thread):
    """Connects to the guest's port 22 (a QEMU port forward) until sshd sends its banner;
    `at` is the host time it arrived. QEMU accepts on the host side at once and closes
    the connection when the guest refuses it, so a refusal is seen at once; while the
    guest has no network the guest side stays unanswered, so such an attempt is dropped
    after a short wait, until the first refusal shows the network is up (sshd comes
    after the network under all three inits; from then on an accepted connection waits
    for the banner)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.at = port, None
        self.done = threading.Event()

    def run(self) -> None:
        network_up = False
        while not self.done.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    with selectors.DefaultSelector() as sel:
                        sel.register(s, selectors.EVENT_READ)
                        if sel.select(30 if network_up else 1.5):
                            data = s.recv(64)
                            if data.startswith(b"SSH-"):
                                self.at = time.monotonic()
                                return
                            network_up = network_up or not data
            except OSError:
                pass   # QEMU is not listening yet
            self.done.wait(0.1)


def _uptime_of(console: Console, wall: float) -> float:
    """A guest wall-clock time as seconds since the guest's boot."""
    out = console.check("cut -d' ' -f1 /proc/uptime; date +%s.%N; cut -d' ' -f1 /proc/uptime")
    up1, now, up2 = (float(x) for x in out.split())
    return wall - (now - (up1 + up2) / 2)


def daemons_ready(console: Console) -> tuple[float, float]:
    """(rsyslog's "start" line, cron's @reboot job) in seconds since the guest's boot."""
    deadline = time.monotonic() + 240
    while True:
        rsyslog, _ = console.run("grep -h 'rsyslogd: \\[origin' /var/log/syslog | tail -1")
        cron, _ = console.run("cat /run/cron-reboot-uptime 2>/dev/null")
        if rsyslog.strip().endswith("start") and re.match(r"\d+\.\d+$", cron.strip()):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"daemons not seen: {rsyslog!r} {cron!r}")
        time.sleep(1)
    wall = datetime.datetime.fromisoformat(rsyslog.split()[0]).timestamp()
    return _uptime_of(console, wall), float(cron)


def boot_once(vmlinuz: Path, initrd: Path, disks: image.Disks, name: str,
              log: Path) -> dict[str, float]:
    init, poweroff = INITS[name]
    append = f"root=/dev/vda init={init} {EXTRA_APPEND.get(name, '')}".strip()
    port = free_port()
    cfg = Config(vmlinuz, initrd, append=append, disks=[disks.root, disks.data],
                 snapshot=True, extra=image.nic_args({port: 22}))
    banner = BannerWatch(port)
    with Console(cfg, log_path=log) as c:
        banner.start()
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
        banner.join(300)
        banner.done.set()
        if banner.at is None:
            raise RuntimeError(f"{name}: no SSH banner on port 22; see {log}")
        rsyslog_up, cron_up = daemons_ready(c)
        rss, pss = smaps(c)
        sent = time.monotonic()
        c.sendline(poweroff)
        how = c.wait_exit(180)
        poweroff_to_exit = time.monotonic() - sent
        if how is not Exit.POWEROFF:  # reported as n/a rather than a false number
            print(f"{name}: poweroff ended as {how.value}; see {log}", file=sys.stderr)
            poweroff_to_exit = float("nan")
    print(f"{name}: PID 1 is {comm!r}; log {log}", file=sys.stderr)
    ready = {"sshd": banner.at - pid1_seen, "rsyslog": rsyslog_up - kernel_to_init,
             "cron": cron_up - kernel_to_init}
    return {"kernel_to_init": kernel_to_init, "init_to_switch": switched - pid1_seen,
            "switch_to_login": to_login, "init_to_login": to_login + switched - pid1_seen,
            **{f"ready_{k}": v for k, v in ready.items()},
            "ready_all": max(ready.values()),
            "poweroff_to_exit": poweroff_to_exit, "rss": rss, "pss": pss}


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
    print(f"{'':32}{header}{ratios}")
    for key, label, unit in (
        ("kernel_to_init", "kernel start -> PID 1", "s"),
        ("init_to_switch", "PID 1 -> switch root", "s"),
        ("switch_to_login", "switch root -> login prompt", "s"),
        ("init_to_login", "PID 1 -> login prompt", "s"),
        ("ready_rsyslog", "PID 1 -> rsyslog start line", "s"),
        ("ready_cron", "PID 1 -> cron @reboot job", "s"),
        ("ready_sshd", "PID 1 -> sshd banner on :22", "s"),
        ("ready_all", "PID 1 -> all three ready", "s"),
        ("poweroff_to_exit", "poweroff -> QEMU exit", "s"),
        ("rss", "PID 1 Rss", "kB"),
        ("pss", "PID 1 Pss", "kB"),
    ):
        fmt = "{:>11.2f}" if unit == "s" else "{:>11.0f}"
        row = "".join(fmt.format(med(n, key)) for n in names)
        if "vigil" in names:
            row += "".join(f"{ratio(med('vigil', key), med(n, key)):>15}" for n in others)
        print(f"{label + ' (' + unit + ')':32}{row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
