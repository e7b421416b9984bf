"""The random seed: saved by stage 3, mixed into the kernel's pool by stage 1.

Light on purpose: stage 3 runs in PID 1, which should not import the settings machinery
(nor dataclasses) only to learn where the file is.
"""

import os

from vigil import logs
from vigil.boot import problem

RANDOM_SEED = "/var/lib/vigil/random-seed"
SEED_SIZE = 512


def load(root: str = "/") -> list[str]:
    """Mix the seed saved at the last shutdown into the kernel's pool, then replace the
    file (or make it, at the first boot), so that a crash before the next shutdown does
    not reuse the same seed. Returns the problems (each also logged)."""
    path = os.path.join(root, RANDOM_SEED.lstrip("/"))
    try:
        with open(path, "rb") as f:
            seed = f.read(4096)
    except FileNotFoundError:   # the first boot: nothing to mix in, a seed to make
        seed = b""
    except OSError as e:
        return problem(f"random seed {path}: {e.strerror}")
    try:
        if seed:
            with open("/dev/urandom", "wb") as f:
                f.write(seed)
    except OSError as e:
        return problem(f"random seed: writing /dev/urandom: {e.strerror}")
    try:
        _replace(path, fresh_seed(len(seed) or SEED_SIZE))
    except BlockingIOError:
        _replace_when_ready(path, len(seed) or SEED_SIZE)
    except OSError as e:   # a read-only root: shutdown saves one anyway
        logs.warn(f"random seed {path} not refreshed: {e.strerror}")
    return []


def _replace(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)   # whoever made it: the next boot's seed is nobody's to read
        os.write(fd, data)
    finally:
        os.close(fd)


def _replace_when_ready(path: str, size: int) -> None:
    """The kernel's generator is not initialised yet (a VM, early boot): a child waits
    for it and then replaces the file, as systemd-random-seed does. Its waiting also makes
    the kernel gather entropy at once (a blocking getrandom runs the jitter generator),
    before sshd's or anything else's first getrandom waits for it on the way to ready;
    the boot goes on meanwhile (PID 1 reaps the child, an orphan)."""
    try:
        if os.fork() != 0:
            return
    except OSError as e:
        logs.warn(f"random seed {path} not refreshed: {e.strerror}")
        return
    code = 1
    try:
        # stage 1's pipe to PID 1 among them: PID 1 reads its answer until EOF
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.setsid()
        _replace(path, os.getrandom(size))
        code = 0
    except BaseException:  # noqa: BLE001 - a child: it only ends
        pass
    finally:
        os._exit(code)


def fresh_seed(size: int = SEED_SIZE) -> bytes:
    """Random bytes without waiting: early in boot (or in a VM) the kernel's generator may
    not be initialised, and a read would block for seconds. Raises OSError(EAGAIN) then."""
    return os.getrandom(size, os.GRND_NONBLOCK)


def save(root: str = "/") -> None:
    """Stage 3: a fresh seed for the next boot (raises OSError, EAGAIN when the kernel's
    generator is not ready: the machine is not held up for it; the caller logs it)."""
    path = os.path.join(root, RANDOM_SEED.lstrip("/"))
    _replace(path, fresh_seed())

