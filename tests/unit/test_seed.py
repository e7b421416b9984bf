"""The random seed: mixed in at boot and replaced, saved at shutdown (/dev/urandom faked
where it is written: a test must not feed the host's pool)."""

import os
import select
import time

import pytest

from vigil.boot import seed


@pytest.fixture
def urandom_writes(monkeypatch):
    written: list[bytes] = []

    class FakeUrandom:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data: bytes) -> None:
            written.append(data)

    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, mode="r", *a, **k: FakeUrandom()
                        if path == "/dev/urandom" and "w" in mode
                        else real_open(path, mode, *a, **k))
    return written


def test_load_mixes_in_and_replaces_the_seed(tmp_path, urandom_writes):
    assert seed.load(str(tmp_path)) == []   # none saved yet: the first boot makes one
    assert urandom_writes == []
    path = tmp_path / seed.RANDOM_SEED.lstrip("/")
    assert len(path.read_bytes()) == seed.SEED_SIZE and os.stat(path).st_mode & 0o777 == 0o600
    path.write_bytes(b"x" * 512)
    assert seed.load(str(tmp_path)) == []
    assert urandom_writes == [b"x" * 512]
    assert len(path.read_bytes()) == 512 and path.read_bytes() != b"x" * 512


def test_load_of_an_unreadable_seed_is_a_problem(tmp_path, urandom_writes):
    path = tmp_path / seed.RANDOM_SEED.lstrip("/")
    path.mkdir(parents=True)   # a directory where the file should be
    assert seed.load(str(tmp_path)) == [f"random seed {path}: Is a directory"]
    assert urandom_writes == []


def test_save_writes_a_private_seed(tmp_path):
    seed.save(str(tmp_path))
    path = tmp_path / seed.RANDOM_SEED.lstrip("/")
    assert len(path.read_bytes()) == seed.SEED_SIZE
    assert os.stat(path).st_mode & 0o777 == 0o600
    first = path.read_bytes()
    seed.save(str(tmp_path))
    assert path.read_bytes() != first


def test_save_does_not_wait_for_the_kernel_generator(tmp_path, monkeypatch):
    # A VM's generator may not be initialised at poweroff: reading /dev/urandom waited
    # 1.1-1.4 s there. getrandom(GRND_NONBLOCK) answers EAGAIN at once instead (faked here:
    # the host's generator is ready).
    asked = []

    def not_ready(size, flags):
        asked.append(flags)
        raise BlockingIOError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(os, "getrandom", not_ready)
    with pytest.raises(OSError) as e:
        seed.save(str(tmp_path))
    assert e.value.errno == 11 and asked == [os.GRND_NONBLOCK]
    assert not (tmp_path / seed.RANDOM_SEED.lstrip("/")).exists()


def test_load_refreshes_the_seed_once_the_kernel_is_ready(tmp_path, urandom_writes,
                                                         monkeypatch):
    """Early in a VM's boot the generator is not ready: the file is replaced by a child
    that waits for it (its blocking getrandom makes the kernel gather entropy now, not when
    sshd first asks), while the boot goes on; it was left as it was."""
    path = tmp_path / seed.RANDOM_SEED.lstrip("/")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 512)
    _test_waiting_child(path, monkeypatch, urandom_writes, [b"x" * 512])


def test_the_first_boot_makes_a_seed_once_the_kernel_is_ready(tmp_path, urandom_writes,
                                                             monkeypatch):
    """No seed yet (a new machine, or a VM's fresh disk): nothing to mix in, and one is
    made the same way, which also makes the kernel gather its entropy early."""
    path = tmp_path / seed.RANDOM_SEED.lstrip("/")
    _test_waiting_child(path, monkeypatch, urandom_writes, [])


def _test_waiting_child(path, monkeypatch, urandom_writes, mixed_in):
    before = path.read_bytes() if path.exists() else None
    tmp_path = path.parents[3]
    real = os.getrandom
    asked = []
    ready = tmp_path / "generator-ready"

    def early(size, flags=0):
        asked.append(flags)
        if flags & os.GRND_NONBLOCK:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        while not ready.exists():    # blocks, as getrandom does until the kernel is ready
            time.sleep(0.01)
        return real(size)
    monkeypatch.setattr(os, "getrandom", early)
    children = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: children.append(real_fork()) or children[-1])
    # stage 1 runs in a child that answers PID 1 through a pipe, read until EOF: the
    # waiting child must not hold it open (the boot would wait for the generator)
    r, w = os.pipe()
    try:
        assert seed.load(str(tmp_path)) == []
        os.close(w)
        assert select.select([r], [], [], 5)[0] and os.read(r, 1) == b""  # EOF while it waits
        assert urandom_writes == mixed_in and asked == [os.GRND_NONBLOCK]
        assert len(children) == 1
        assert (path.read_bytes() if path.exists() else None) == before   # not yet
    finally:
        os.close(r)
        ready.touch()   # the child ends whatever happened
        statuses = [os.waitpid(pid, 0)[1] for pid in children]
    assert [os.waitstatus_to_exitcode(s) for s in statuses] == [0]
    fresh = path.read_bytes()
    assert len(fresh) == 512 and fresh != before and os.stat(path).st_mode & 0o777 == 0o600
