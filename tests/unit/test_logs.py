"""Service log capture: rotation between lines, the memory buffer, counted drops."""

import os
import re

from vigil import logs


def feed(log, data: bytes):
    os.write(log.write_fd, data)
    log.on_readable()


def all_lines(path, keep):
    out = []
    for k in range(keep, 0, -1):
        if os.path.exists(f"{path}.{k}"):
            out += open(f"{path}.{k}").read().splitlines()
    return out + open(path).read().splitlines()


def test_rotation_loses_and_cuts_no_line(tmp_path):
    log = logs.ServiceLog("svc", str(tmp_path), max_size=2048, keep=100)
    n = 3000
    data = b"".join(b"line %d %s\n" % (i, b"x" * (i % 50)) for i in range(n))
    for i in range(0, len(data), 777):  # arbitrary chunks, cutting lines in the middle
        feed(log, data[i:i + 777])
    lines = all_lines(log.path, 100)
    numbers = [int(re.fullmatch(r"\S+ \S+ line (\d+) x*", line).group(1)) for line in lines]
    assert numbers == list(range(n))
    assert os.path.exists(log.path + ".1")
    for k in range(1, 100):
        if os.path.exists(f"{log.path}.{k}"):
            assert os.path.getsize(f"{log.path}.{k}") <= 2048
    log.close()


def test_keep_bounds_the_number_of_files(tmp_path):
    log = logs.ServiceLog("svc", str(tmp_path), max_size=1024, keep=3)
    for i in range(500):
        feed(log, b"%05d\n" % i)
    assert sorted(os.listdir(tmp_path)) == ["svc.log", "svc.log.1", "svc.log.2", "svc.log.3"]
    log.close()


def test_unwritable_directory_buffers_then_flushes(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = logs.ServiceLog("svc", str(blocker / "logs"), max_size=1 << 20, keep=2)
    feed(log, b"early 1\nearly 2\n")
    assert log.memory and log.last_error
    blocker.unlink()
    assert log.flush_memory()
    text = open(log.path).read()
    assert "early 1" in text and "early 2" in text and not log.memory
    log.close()


def test_memory_is_bounded_and_drops_are_counted(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = logs.ServiceLog("svc", str(blocker / "logs"), max_size=1 << 20, keep=2)
    line = b"y" * 99 + b"\n"
    for _ in range(2 * logs.MEMORY_LIMIT // 1000):
        feed(log, line * 10)
    assert log.memory_bytes <= logs.MEMORY_LIMIT and log.dropped > 0
    blocker.unlink()
    log.flush_memory()
    assert f"{log.dropped} lines dropped" in open(log.path).read()
    log.close()


def test_partial_line_and_overlong_line(tmp_path):
    log = logs.ServiceLog("svc", str(tmp_path), max_size=1 << 20, keep=2)
    feed(log, b"no newline yet")
    assert not os.path.exists(log.path) or "no newline" not in open(log.path).read()
    feed(log, b" ... done\n" + b"z" * (logs.MAX_LINE * 2 + 10))
    log.flush_partial()
    lines = open(log.path).read().splitlines()
    assert lines[0].endswith("no newline yet ... done")
    assert [len(x.split(" ", 2)[2]) for x in lines[1:]] == [logs.MAX_LINE, logs.MAX_LINE, 10]
    log.close()
