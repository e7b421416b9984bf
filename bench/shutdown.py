"""Shutdown time with 50 services, 10 of them slow to stop: vigil vs sysvinit.

    python bench/shutdown.py [--runs N] [--only vigil|sysvinit] [--trap-once]

The Debian test disk (`make image`) is copied (sparse) and the 50 services are written
into the copy with `debugfs -w` (no mount, the cached disk stays as built); each boot then
uses that copy with -snapshot, so every run starts from the same disk. The services:
  - 40 `/bin/sleep 86400`: die at once on SIGTERM;
  - 10 `sh -c 'trap "sleep 2; exit 0" TERM; while :; do sleep 1; done'`: 2 s to exit
    after SIGTERM (and up to 1 s more if the TERM reaches only the shell, which runs its
    trap once the `sleep 1` in the foreground has ended).
vigil: one TOML unit each in /etc/vigil/units (stop_timeout = 5, log = "null").
sysvinit: one `respawn` line each in /etc/inittab, for runlevels 2-5. On `init 0`, init
sends TERM to them, waits until they are gone (5 s at most, then KILL), then runs
`/etc/init.d/rc 0`. That is the fastest way sysvinit has to stop 50 daemons (no K script
runs one after another, no start-stop-daemon polling), so the comparison does not favour
vigil.
Per boot: log in as root on the serial console, count the 50, send the power-off command
(`poweroff` under vigil; `/sbin/init 0` under sysvinit, since the disk's `poweroff` is
vigil's), and time from sending it to QEMU's exit on the host's monotonic clock. For vigil
also its own "services stopped in" time and whether the stage-3 steps appear.
The bound compared against: the slowest stop (the slow services' 2 s trap) + 1 s = 3 s,
plus the fixed tail after the services are gone (sync, unmount, reboot(2)).
A shell whose TERM trap is still running when a second SIGTERM arrives runs the trap
again (2 s more). --trap-once gives the slow services a trap that first sets TERM's trap
to `:`, so a second SIGTERM costs nothing: it tells the init's signalling apart from the
2 s the services need.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vm import accel, image, kernel  # noqa: E402
from vm.qemu import Config, Console, Exit  # noqa: E402

OUT = REPO / "build" / "bench"
N_FAST, N_SLOW = 40, 10
SLOW_EXIT = 2.0  # seconds the slow services take after SIGTERM
STOP_TIMEOUT = 5
FAST_CMD = ["/bin/sleep", "86400"]
SLOW_SCRIPT = 'trap "sleep 2; exit 0" TERM; while :; do sleep 1; done'
SLOW_CMD = ["/bin/sh", "-c", SLOW_SCRIPT]
# --trap-once: a second SIGTERM during the trap runs `:` instead of the trap again.
SLOW_ONCE_CMD = ["/bin/sh", "-c",
                 'trap "trap : TERM; sleep 2; exit 0" TERM; while :; do sleep 1; done']
# init= and the command that powers off under it (see bench/debian_boot.py).
INITS = {
    "vigil": ("/sbin/vigil", "poweroff"),
    "sysvinit": ("/sbin/init", "/sbin/init 0"),
}
# vigil's stage-3 steps as its console log names them.
STAGE3 = (r"poweroff: stopping services", r"poweroff: services stopped in",
          r"\] swapoff ", r"\] sync", r"\] unmount /data", r"\] remount / read-only",
          r"poweroff: done after")


def services(slow: list[str]) -> list[tuple[str, list[str]]]:
    """(name, argv) of the 50: fast ones first."""
    out = [(f"bsleep{i:02d}", FAST_CMD) for i in range(1, N_FAST + 1)]
    out += [(f"bslow{i:02d}", slow) for i in range(1, N_SLOW + 1)]
    return out


def unit_toml(argv: list[str]) -> str:
    # A JSON string of ASCII text is a valid TOML basic string.
    exec_ = ", ".join(json.dumps(a) for a in argv)
    return (f"[service]\nexec = [{exec_}]\nstop_timeout = {STOP_TIMEOUT}\n"
            f'log = "null"\n')


def inittab_lines(slow: list[str]) -> str:
    lines = ["# bench/shutdown.py: 50 services\n"]
    for i, (_, argv) in enumerate(services(slow), 1):
        cmd = " ".join(f"'{a}'" if " " in a else a for a in argv)
        lines.append(f"b{i:02d}:2345:respawn:{cmd}\n")
    return "".join(lines)


def debugfs(img: Path, commands: list[str]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as f:
        f.write("\n".join(commands) + "\n")
        f.flush()
        r = subprocess.run(["debugfs", "-w", "-f", f.name, str(img)],
                           capture_output=True, text=True)
    # debugfs exits 0 even when a command fails; its errors name the command.
    errors = [ln for ln in r.stderr.splitlines()
              if ln.strip() and not ln.startswith("debugfs ") and "Allocated inode" not in ln]
    if r.returncode != 0 or errors:
        raise RuntimeError(f"debugfs on {img}: {r.returncode}\n{r.stderr}")


def debugfs_cat(img: Path, path: str) -> str:
    r = subprocess.run(["debugfs", "-R", f"cat {path}", str(img)],
                       capture_output=True, text=True, check=True)
    return r.stdout


def prepare(disks: image.Disks, slow: list[str]) -> Path:
    """A copy of the root disk with the 50 services for both inits; reused while the
    cached disk and the services stay the same."""
    src = disks.root
    st = src.stat()
    key = hashlib.sha256(json.dumps(
        [str(src), st.st_size, st.st_mtime_ns, services(slow), unit_toml(slow),
         inittab_lines(slow)]).encode()).hexdigest()[:16]
    variant = "" if slow == SLOW_CMD else "-trap-once"
    img = OUT / f"shutdown-root{variant}.img"
    stamp = img.with_suffix(".key")
    if img.is_file() and stamp.is_file() and stamp.read_text().strip() == key:
        return img
    stamp.unlink(missing_ok=True)
    print(f"shutdown: copying {src.name} and adding {N_FAST + N_SLOW} services",
          file=sys.stderr, flush=True)
    subprocess.run(["cp", "--sparse=always", str(src), str(img)], check=True)
    inittab = debugfs_cat(img, "/etc/inittab")
    if "initdefault" not in inittab:
        raise RuntimeError("the disk's /etc/inittab was not readable")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        cmds = ["mkdir /etc/vigil", "mkdir /etc/vigil/units"]
        for name, argv in services(slow):
            f = t / f"{name}.toml"
            f.write_text(unit_toml(argv))
            f.chmod(0o644)
            cmds.append(f"write {f} /etc/vigil/units/{name}.toml")
        new_inittab = t / "inittab"
        new_inittab.write_text(inittab + inittab_lines(slow))
        new_inittab.chmod(0o644)
        cmds += ["rm /etc/inittab", f"write {new_inittab} /etc/inittab"]
        debugfs(img, cmds)
    # debugfs -w leaves the file system clean, but check it as the guest would.
    subprocess.run(["e2fsck", "-fn", str(img)], check=True, capture_output=True)
    stamp.write_text(key + "\n")
    return img


def count(c: Console) -> tuple[int, int]:
    out, _ = c.run("pgrep -cxf '/bin/sleep 86400'; pgrep -cf 'while :; do sleep 1'")
    nums = [int(x) for x in re.findall(r"^\d+$", out, re.MULTILINE)]
    if len(nums) != 2:
        raise RuntimeError(f"pgrep said {out!r}")
    return nums[0], nums[1]


def boot_once(vmlinuz: Path, initrd: Path, root: Path, data: Path, name: str,
              log: Path) -> dict[str, float]:
    init, poweroff = INITS[name]
    cfg = Config(vmlinuz, initrd, append=f"root=/dev/vda init={init}",
                 disks=[root, data], snapshot=True, extra=image.nic_args())
    res: dict[str, float] = {}
    with Console(cfg, log_path=log) as c:
        c.noise.append(r"^vigil: .*\n")
        c.noise.append(r"^INIT: .*\n")
        c.expect(r"login: ", timeout=400)
        c.pos = 0
        c.login(timeout=60)
        # The 50 start beside the getty: wait until they are all there (60 s at most).
        fast = slow = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            fast, slow = count(c)
            if (fast, slow) == (N_FAST, N_SLOW):
                break
            time.sleep(1)
        res["fast_running"], res["slow_running"] = fast, slow
        if (fast, slow) != (N_FAST, N_SLOW):
            print(f"{name}: only {fast}+{slow} of {N_FAST}+{N_SLOW} running",
                  file=sys.stderr)
        mark = len(c.text)
        sent = time.monotonic()
        c.sendline(poweroff)
        how = c.wait_exit(180)
        res["poweroff_to_exit"] = time.monotonic() - sent
        if how is not Exit.POWEROFF:
            print(f"{name}: poweroff ended as {how.value}; see {log}", file=sys.stderr)
            res["poweroff_to_exit"] = float("nan")
        tail = c.text[mark:]
        m_begin = re.search(r"poweroff: stopping services", tail)
        m_done = re.search(r"poweroff: services stopped in ([\d.]+)s", tail)
        if name == "vigil" and m_begin and m_done:
            res["stop_reported"] = float(m_done.group(1))
            # The same interval as the host saw the two lines arrive.
            res["stop_host"] = (c.arrived(mark + m_done.end() - 1)
                                - c.arrived(mark + m_begin.end() - 1))
            res["sent_to_begin"] = c.arrived(mark + m_begin.end() - 1) - sent
            res["stopped_to_exit"] = (sent + res["poweroff_to_exit"]
                                      - c.arrived(mark + m_done.end() - 1))
        res["stage3_steps"] = sum(1 for s in STAGE3 if re.search(s, tail))
        # How the slow ones ended: by their trap, or SIGKILLed at stop_timeout.
        res["slow_killed"] = len(re.findall(r"bslow\d+: signal SIGKILL", tail))
        res["slow_exited"] = len(re.findall(r"bslow\d+: exit 0", tail))
        if name == "sysvinit":
            m = re.search(r"INIT: Sending processes configured via /etc/inittab the TERM",
                          tail)
            # rc 0 starts once init's children are gone (or after its 5 s, KILLed).
            m2 = re.search(r"concurrent boot in runlevel 0|INIT: Sending processes "
                           r"configured via /etc/inittab the KILL", tail)
            if m:
                res["sent_to_term"] = c.arrived(mark + m.end() - 1) - sent
                if m2:
                    res["term_to_rc0"] = (c.arrived(mark + m2.end() - 1)
                                          - c.arrived(mark + m.end() - 1))
                    res["init_killed"] = float("KILL" in m2.group(0))
    print(f"{name}: {res['poweroff_to_exit']:.2f} s poweroff -> exit; log {log}",
          file=sys.stderr, flush=True)
    return res


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or x != x else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=2, help="boots per init (median)")
    p.add_argument("--frozen", type=Path, default=REPO / "build" / "frozen" / "vigil",
                   help="the frozen vigil tree for the initramfs")
    p.add_argument("--only", action="append", choices=sorted(INITS),
                   help="boot only these (repeatable)")
    p.add_argument("--trap-once", action="store_true",
                   help="slow services that ignore a second SIGTERM during their trap")
    args = p.parse_args(argv)
    slow = SLOW_ONCE_CMD if args.trap_once else SLOW_CMD
    began = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    k = kernel.fetch()
    disks = image.build()
    initrd = image.build_initramfs(OUT / "initramfs-disk.cpio.gz", frozen=args.frozen)
    root = prepare(disks, slow)
    names = [n for n in INITS if not args.only or n in args.only]
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    tag = "-once" if args.trap_once else ""
    for run in range(args.runs):
        for name in names:  # alternate, so a slow spell of the host hits each
            results[name].append(boot_once(k.vmlinuz, initrd, root, disks.data, name,
                                           OUT / f"shutdown-{name}{tag}-{run}.log"))

    def med(name: str, key: str) -> float | None:
        vals = [r[key] for r in results.get(name, []) if key in r]
        return statistics.median(vals) if vals else None

    bound = SLOW_EXIT + 1.0
    print(f"\nShutdown with {N_FAST} fast + {N_SLOW} slow ({SLOW_EXIT:.0f} s) services, "
          f"accel={accel.accel(k.vmlinuz)}, kernel {k.version}, {args.runs} run(s) each"
          f"{', slow trap ignores a 2nd TERM (--trap-once)' if args.trap_once else ''}")
    print(f"{'init':10}{'running':>9}{'poweroff -> QEMU exit (s), each run':>38}"
          f"{'median':>9}{'vs vigil':>10}")
    for name in names:
        rs = results[name]
        running = "/".join(f"{int(r['fast_running']) + int(r['slow_running'])}" for r in rs)
        each = " ".join(fmt(r["poweroff_to_exit"]) for r in rs)
        mv, mn = med("vigil", "poweroff_to_exit"), med(name, "poweroff_to_exit")
        rel = f"{mn / mv:.2f}x" if mv and mn and mv == mv and mn == mn else "-"
        print(f"{name:10}{running:>9}{each:>38}{fmt(mn):>9}{rel:>10}")
    mv, ms = med("vigil", "poweroff_to_exit"), med("sysvinit", "poweroff_to_exit")
    if mv and ms:
        print(f"ratio vigil/sysvinit (median): {mv / ms:.2f}")
    if "vigil" in names:
        rs = results["vigil"]
        print(f"vigil 'stopping services' -> 'services stopped in', its own clock (s): "
              f"{' '.join(fmt(r.get('stop_reported')) for r in rs)}; "
              f"host arrival: {' '.join(fmt(r.get('stop_host')) for r in rs)}")
        print(f"vigil command sent -> 'stopping services' line (s): "
              f"{' '.join(fmt(r.get('sent_to_begin')) for r in rs)}; "
              f"'services stopped' -> QEMU exit (the tail): "
              f"{' '.join(fmt(r.get('stopped_to_exit')) for r in rs)}")
        ends = " ".join(f"{int(r['slow_exited'])} exited/{int(r['slow_killed'])} SIGKILLed"
                        for r in rs)
        print(f"vigil's {N_SLOW} slow services, each run: {ends}")
        seen = " ".join(f"{int(r['stage3_steps'])}/{len(STAGE3)}" for r in rs)
        print(f"vigil stage-3 steps seen on the console: {seen}")
        stop = med("vigil", "stop_reported")
        within = stop is not None and stop <= bound
        killed = sum(int(r["slow_killed"]) for r in rs)
        why = f" ({killed} slow stops ran into stop_timeout = {STOP_TIMEOUT} s)" if killed else ""
        print(f"bound: slowest stop ({SLOW_EXIT:.0f} s) + 1 s = {bound:.0f} s for the "
              f"services; vigil's median {fmt(stop)} s is {'within' if within else 'OVER'} "
              f"it{why}"
              f"; the whole poweroff -> exit ({fmt(mv)} s) adds the command's start and "
              f"the fixed tail (sync, unmount, reboot(2))")
    if "sysvinit" in names:
        rs = results["sysvinit"]
        print(f"sysvinit command sent -> 'INIT: Sending ... TERM' (s): "
              f"{' '.join(fmt(r.get('sent_to_term')) for r in rs)}; that -> rc 0 starts "
              f"(its inittab children gone): "
              f"{' '.join(fmt(r.get('term_to_rc0')) for r in rs)}; init had to KILL: "
              f"{' '.join('yes' if r.get('init_killed') else 'no' for r in rs)}")
    print(f"script took {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
