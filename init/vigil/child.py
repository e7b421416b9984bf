"""Work done in a forked child that answers in JSON: parsing unit files, stage 1's boot steps.

PID 1 then never imports what that work needs (the TOML parser, dataclasses, subprocess,
pyudev...), so it stays small, and a bug or a hostile input in that work can at worst kill
the child, never PID 1. Everything stage 1 changes (mounts, modules, swap, hostname, the
clock) belongs to the whole system, so doing it from a child changes nothing for PID 1.
"""

from vigil import jsonc as json  # json.dumps and json.loads without re: vigil.jsonc
import os
import signal
from collections.abc import Callable


class ChildFailed(Exception):
    pass


def run(fn: Callable, *args):
    """fn(*args) in a forked child; its JSON-able result comes back through a pipe.

    PID 1 waits for the answer: the work is short and the loop has nothing to do yet
    (stage 1), or it is a reload that must finish before its reply is sent.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])  # programs it runs get a clean mask
            data = json.dumps({"ok": fn(*args)}, default=str).encode()
        except BaseException as e:  # noqa: BLE001 - reported to the parent, never raised there
            data = json.dumps({"error": repr(e)}).encode()
        try:
            while data:
                data = data[os.write(w, data):]
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 20):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise ChildFailed("the child died without an answer") from None
    if "error" in answer:
        raise ChildFailed(answer["error"])
    return answer["ok"]
