"""Make N zombies and hand them all to PID 1 of the current PID namespace at once.

Run inside the namespace: python3 -I -S orphans.py N [WORKERS]. WORKERS processes
fork N children between them (in parallel, since forking 20,000 times is the slow
part); the children block on a pipe and all exit as soon as it is closed. When
every child is a zombie this prints "ready" and waits for a line on stdin; then it
prints its CLOCK_MONOTONIC time and lets the workers exit, so their zombies are
reparented to PID 1 in one burst. The workers themselves are reaped here, so PID 1
gets exactly N orphans.
"""

import os
import sys
import time


def zombies(pids: list[int]) -> int:
    """Count which of pids are zombies (state Z) right now."""
    n = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        # The state follows the last ')' since comm may hold spaces or parens.
        end = stat.rindex(b")")
        if stat[end + 2 : end + 3] == b"Z":
            n += 1
    return n


def worker(count: int, ready_w: int, go_r: int) -> None:
    """Fork count children, let them all exit, report, then exit on go."""
    r, w = os.pipe()
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            # Only the worker may hold w, or the children would never see EOF.
            os.close(w)
            os.read(r, 1)
            os._exit(0)
        pids.append(pid)
    os.close(r)
    os.close(w)
    deadline = time.monotonic() + 300
    while zombies(pids) < count:
        if time.monotonic() > deadline:
            os._exit(1)
        time.sleep(0.05)
    os.write(ready_w, b"r")
    # EOF here means the main process closed go_w: exit with the zombies unreaped.
    os.read(go_r, 1)
    os._exit(0)


def main() -> int:
    count = int(sys.argv[1])
    nworkers = max(1, int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count() or 1)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    workers = []
    for i in range(nworkers):
        share = count // nworkers + (1 if i < count % nworkers else 0)
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            os.close(go_w)
            worker(share, ready_w, go_r)
        workers.append(pid)
    os.close(ready_w)
    os.close(go_r)
    got = 0
    while got < nworkers:
        chunk = os.read(ready_r, nworkers)
        if not chunk:
            print("error: a worker failed", flush=True)
            return 1
        got += len(chunk)
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic()
    os.close(go_w)
    for pid in workers:
        os.waitpid(pid, 0)
    print(f"{start:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
