"""Service log capture under random output and a failing disk; vigil's own console lines
with hostile text; a handler's exception in the loop."""

import os
import re
import resource
import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil import logs
from vigil.loop import Loop

EXAMPLES = int(os.environ.get("VIGIL_FUZZ_EXAMPLES", "150"))
STAMP = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ")


def feed(log, data: bytes) -> None:
    os.write(log.write_fd, data)
    log.on_readable()


def on_disk(path: str, keep: int) -> list[bytes]:
    """Every line in the files, oldest first, each checked for its stamp and stripped."""
    out = []
    for name in [f"{path}.{k}" for k in range(keep, 0, -1)] + [path]:
        if os.path.exists(name):
            data = open(name, "rb").read()
            assert not data or data.endswith(b"\n"), f"{name} ends inside a line"
            for line in data.split(b"\n")[:-1]:
                m = STAMP.match(line)
                assert m, f"a line without its stamp: {line[:60]!r}"
                out.append(line[m.end():])
    return out


def expected(data: bytes) -> list[bytes]:
    """The lines vigil should write for this output: split on \\n alone, long ones cut."""
    out = []
    for line in data.split(b"\n"):
        while len(line) > logs.MAX_LINE:
            out.append(line[:logs.MAX_LINE])
            line = line[logs.MAX_LINE:]
        out.append(line)
    if out[-1] == b"":
        out.pop()
    return out


@settings(max_examples=EXAMPLES // 2, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(max_size=3000) | st.sampled_from(
           [b"\n", b"\r", b"\r\n", b"x" * (logs.MAX_LINE + 5), b"\xff\xfe\x00\x1b[2J"]),
           max_size=30),
       max_size=st.integers(1024, 8192))
def test_what_is_on_disk_is_the_output_in_whole_lines(tmp_path, chunks, max_size):
    d = tmp_path / "logs"
    shutil.rmtree(d, ignore_errors=True)
    log = logs.ServiceLog("svc", str(d), max_size=max_size, keep=1000)
    try:
        data = b"".join(chunks)
        for chunk in chunks:
            if chunk:
                feed(log, chunk)
        log.flush_partial()
        # a line longer than a file is written in a file of its own, never cut there
        assert on_disk(log.path, 1000) == expected(data)
        assert log.dropped == 0 and not log.memory
    finally:
        log.close()


def in_child(fn) -> None:
    """Run fn in a forked child (it changes rlimits) and fail if it fails."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException:  # noqa: BLE001 - reported through the exit status
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_full_disk_keeps_whole_lines_and_writes_the_rest_later(tmp_path, capfd):
    # RLIMIT_FSIZE gives what a full disk gives: a short write, then an error (EFBIG
    # here, ENOSPC there). Nothing of a cut line may stay on disk.
    def run():
        log = logs.ServiceLog("svc", str(tmp_path), max_size=1 << 20, keep=2)
        numbered = b"".join(b"line %05d\n" % i for i in range(3000))
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_007, resource.RLIM_INFINITY))
        for i in range(0, len(numbered), 4096):
            feed(log, numbered[i:i + 4096])
        size = os.path.getsize(log.path)
        assert size <= 10_007 and open(log.path, "rb").read().endswith(b"\n")
        assert log.memory and "File too large" in log.last_error
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        log.next_try = 0
        feed(log, b"after\n")
        got = on_disk(log.path, 2)
        assert got == [b"line %05d" % i for i in range(3000)] + [b"after"]
        assert not log.last_error and log.dropped == 0
        log.close()
    in_child(run)
    err = capfd.readouterr().err
    assert err.count("keeping its last lines in memory") == 1, "said once"
    assert err.count("is writable again") == 1


def test_a_removed_log_directory_is_made_again_and_loses_nothing(tmp_path):
    log = logs.ServiceLog("svc", str(tmp_path / "logs"), max_size=1 << 20, keep=2)
    feed(log, b"one\n")
    shutil.rmtree(tmp_path / "logs")
    feed(log, b"two\n")
    assert on_disk(log.path, 2) == [b"two"], "written to the new file, not the removed one"
    log.close()


def test_drops_are_said_before_the_lines_kept(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = logs.ServiceLog("svc", str(blocker / "logs"), max_size=1 << 20, keep=2)
    for i in range(logs.MEMORY_LIMIT // 10):
        feed(log, b"%09d\n" % i)
    dropped = log.dropped
    assert dropped > 0 and log.memory_bytes <= logs.MEMORY_LIMIT
    blocker.unlink()
    log.flush_memory()
    lines = on_disk(log.path, 2)
    assert lines[0] == b"vigil: %d lines dropped while the log was not writable" % dropped
    assert [int(x) for x in lines[1:]] == list(range(dropped, logs.MEMORY_LIMIT // 10))
    log.next_try = 0
    feed(log, b"later\n")
    assert on_disk(log.path, 2).count(lines[0]) == 1, "the drops are told once"
    log.close()


@settings(max_examples=EXAMPLES)
@given(st.text())
def test_say_never_writes_a_control_character(text):
    line = ("vigil: " + logs.escape(text) + "\n").encode(errors="replace")
    assert not any(b < 0x20 and b not in (0x09, 0x0a) or b == 0x7f for b in line)
    assert line.count(b"\n") == 1
    assert not any(0x80 <= ord(c) < 0xa0 for c in logs.escape(text))


def test_say_escapes_what_a_unit_name_or_status_carries(capfd):
    logs.say("unit \x1b]0;owned\x07 \x1b[2J\x9b31m: exit 3")
    err = capfd.readouterr().err
    assert err == "vigil: unit \\x1b]0;owned\\x07 \\x1b[2J\\x9b31m: exit 3\n"


def test_an_exception_in_a_handler_is_logged_with_its_traceback(capfd):
    loop = Loop(on_error=logs.exception)
    r, w = os.pipe()
    ran = []

    def bad(_mask):
        os.read(r, 1)
        raise KeyError("handler bug")
    loop.add(r, bad)
    loop.call_later(0, lambda: 1 / 0)
    loop.call_later(0, lambda: ran.append("the next timer"))
    os.write(w, b"x")
    loop.run_once()
    loop.call_later(0, lambda: ran.append("the next turn"))
    loop.run_once()
    err = capfd.readouterr().err
    assert "error in fd" in err and "KeyError('handler bug')" in err
    assert "error in timer: ZeroDivisionError" in err
    assert err.count("Traceback (most recent call last)") == 2 and "in bad" in err
    assert ran == ["the next timer", "the next turn"]
    os.close(r)
    os.close(w)


def held_open(path: str) -> bool:
    fds = "/proc/self/fd"
    return path in {os.readlink(f"{fds}/{fd}") for fd in os.listdir(fds)
                    if os.path.exists(f"{fds}/{fd}")}


def test_release_writes_what_is_left_and_closes_the_file(tmp_path):
    # at poweroff: an open log file kept / from being remounted read-only
    log = logs.ServiceLog("svc", str(tmp_path), max_size=1 << 20, keep=2)
    feed(log, b"whole\nand a half")
    os.write(log.write_fd, b" line\nunread\n")
    assert held_open(log.path)
    log.release()
    assert on_disk(log.path, 2) == [b"whole", b"and a half line", b"unread"]
    assert not held_open(log.path), "nothing holds the file open for writing"
    feed(log, b"late\n")
    assert not held_open(log.path), "and nothing opens it again"
    log.close()
