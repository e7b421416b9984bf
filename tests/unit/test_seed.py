"""The random seed: mixed in at boot and replaced, saved at shutdown (/dev/urandom faked
where it is written: a test must not feed the host's pool)."""

import os

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
    assert seed.load(str(tmp_path)) == []   # none saved yet: the first boot
    assert urandom_writes == []
    path = tmp_path / seed.RANDOM_SEED.lstrip("/")
    path.parent.mkdir(parents=True)
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
