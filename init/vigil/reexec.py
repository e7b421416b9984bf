"""Re-executing PID 1 in place (`vigilctl reexec`, `telinit u`): an upgrade without a reboot.

vigil writes its state as JSON into a memfd, clears close-on-exec on the descriptors that
must survive (that memfd, the control socket, every service's log pipe and notify
socket), and execs its own program again with `--resume FD`. The pid stays 1, so every
service is still our child; the signal mask and pending signals survive exec, so no
SIGCHLD is lost. The new vigil reads the unit files, then gives each service its runtime
state from before instead of starting it. The state is the same shape `vigilctl dump`
shows: each object writes its own (Supervisor/Service/ServiceLog.snapshot) and reads it
back (restore).
"""

from vigil import jsonc as json  # json.dumps and json.loads without re: vigil.jsonc
import os
import sys

from vigil import logs


def snapshot(init) -> dict:
    return {"supervisor": init.sup.snapshot(),
            "control_fd": init.control.sock.fileno() if init.control else -1,
            "machine": init.machine, "started": init.started,
            "scheduled": init.down.scheduled, "reexecs": init.reexecs + 1}


def execute(init) -> None:
    """Save the state and exec; returns only if the exec failed (vigil then goes on)."""
    state = snapshot(init)
    for fd in init.sup.inherited_fds() + [state["control_fd"]]:
        if fd >= 0:
            os.set_inheritable(fd, True)
    fd = os.memfd_create("vigil-state", 0)  # no MFD_CLOEXEC: the new program reads it
    os.write(fd, json.dumps(state).encode())
    # orig_argv keeps the interpreter's own options (python -m vigil.main ...)
    argv = list(getattr(sys, "orig_argv", None) or sys.argv)
    if "--resume" in argv:  # a second re-exec: drop the first one's descriptor
        i = argv.index("--resume")
        del argv[i:i + 2]
    logs.say(f"re-executing {sys.executable}")
    try:
        os.execv(sys.executable, argv + ["--resume", str(fd)])
    except OSError as e:
        logs.error(f"re-exec failed, going on as before: {e}")
        os.close(fd)


def load(fd: int) -> dict:
    with os.fdopen(fd, "rb") as f:
        f.seek(0)
        return json.loads(f.read())


def restore(init, state: dict) -> None:
    init.machine, init.started = state["machine"], state["started"]
    init.down.machine = init.machine
    init.reexecs = state["reexecs"]
    init.sup.restore(state["supervisor"])
    if state["scheduled"]:
        s = state["scheduled"]
        init.down.schedule(s["action"], s["when"], s["wall"], s["message"])
    logs.say(f"resumed after re-exec #{init.reexecs}: {init.sup.state_line()}")
