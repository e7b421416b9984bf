"""Whether QEMU's KVM really runs a guest here, else TCG; probed once and cached.

/dev/kvm can exist and open fine while guests never run (nested virtualisation without
the CPU features, as on some CI hosts), so the probe boots the kernel under KVM and
waits for its first console line. The answer is cached per host kernel and QEMU build.
Set VIGIL_ACCEL=kvm or VIGIL_ACCEL=tcg to skip the probe.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import selectors
import subprocess
import sys
import time
from pathlib import Path

QEMU = "qemu-system-x86_64"
PROBE_SECONDS = 8.0  # a working KVM prints the banner in well under a second


def _cache_file() -> Path:
    env = os.environ.get("VIGIL_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "vigil") / "accel.json"


def _key() -> str:
    qemu = subprocess.run(
        [QEMU, "--version"], check=False, capture_output=True, text=True
    ).stdout
    return f"{platform.release()} {qemu.splitlines()[0] if qemu else '?'}"


def probe_kvm(kernel: Path) -> bool:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    cmd = [
        QEMU, "-accel", "kvm", "-M", "pc", "-m", "128M", "-nodefaults", "-no-user-config",
        "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
        "-kernel", str(kernel), "-append", "console=ttyS0 panic=1",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + PROBE_SECONDS
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while b"Linux version" not in seen:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return False
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:  # QEMU exited: KVM refused
                    return False
                seen += chunk
        return True
    finally:
        proc.kill()
        proc.wait()


@functools.cache
def accel(kernel: Path) -> str:
    """"kvm" or "tcg" for this host."""
    forced = os.environ.get("VIGIL_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    cache = _cache_file()
    key = _key()
    try:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key and saved.get("accel") in ("kvm", "tcg"):
            return str(saved["accel"])
    except (OSError, ValueError):
        pass
    result = "kvm" if probe_kvm(kernel) else "tcg"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "accel": result}) + "\n")
    return result


if __name__ == "__main__":
    from vm import kernel as _kernel

    print(accel(_kernel.fetch().vmlinuz))
    sys.exit(0)
