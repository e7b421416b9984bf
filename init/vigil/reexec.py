"""Re-executing PID 1 in place (`vigilctl reexec`, `telinit u`): an upgrade without a reboot.

vigil writes its state as JSON into a memfd, clears close-on-exec on the descriptors that
must survive (that memfd, the control socket, every service's log pipe and notify
socket), and execs its own program again with `--resume FD`. The pid stays 1, so every
service is still our child; the signal mask and pending signals survive exec, so no
SIGCHLD is lost. The new vigil reads the unit files, then takes each service's runtime
state (pid, restarts, timers, log pipe) from the saved state instead of starting it.
"""

import json
import os
import signal
import sys
import time

from vigil import logs

# Runtime fields of a Service carried over as they are.
SERVICE_FIELDS = ("state", "reason", "since", "pid", "launcher", "pgid", "started", "requested",
                  "ready_after", "restarts", "last_exit", "wanted", "start_again", "delay",
                  "status_text", "stop_reason", "timed_out", "uid")


def snapshot(init) -> dict:
    sup = init.sup
    services = {}
    for name, svc in sup.services.items():
        state = {f: getattr(svc, f) for f in SERVICE_FIELDS}
        state["starts"] = list(svc.starts)
        if svc.timer is not None and not svc.timer.cancelled:
            state["timer"] = [svc.timer.callback.__name__, svc.timer.when]
        if svc.log is not None:
            state["log"] = {"fds": [svc.log.read_fd, svc.log.write_fd],
                            "partial": svc.log.partial.decode("latin-1"),
                            "memory": [m.decode("latin-1") for m in svc.log.memory],
                            "dropped": svc.log.dropped, "lines": svc.log.lines}
        if svc.notify_fd >= 0:
            state["notify"] = [svc.notify_fd, svc.notify_path]
        services[name] = state
    return {"services": services, "roots": sup.roots, "problems": sup.problems,
            "control_fd": init.control.sock.fileno() if init.control else -1,
            "machine": init.machine, "started": init.started, "scheduled": init.scheduled,
            "reexecs": init.reexecs + 1}


def _keep(fd: int) -> None:
    if fd >= 0:
        os.set_inheritable(fd, True)


def execute(init) -> None:
    """Save the state and exec; returns only if the exec failed (vigil then goes on)."""
    state = snapshot(init)
    for svc in state["services"].values():
        for fd in svc.get("log", {}).get("fds", []):
            _keep(fd)
        if "notify" in svc:
            _keep(svc["notify"][0])
    _keep(state["control_fd"])
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
    """Give the services read from the unit files their runtime state from before."""
    sup = init.sup
    sup.roots = state["roots"]
    for name in sup.roots:
        sup.lookup(name)
    sup.problems.update(state["problems"])
    init.machine, init.started = state["machine"], state["started"]
    init.reexecs = state["reexecs"]
    now = time.monotonic()
    for name, saved in state["services"].items():
        svc = sup.services.get(name)
        if svc is None:  # its file is gone: do what a reload would do
            logs.warn(f"{name}: no unit file after re-exec, stopping it")
            for pid in (saved["pid"], saved["launcher"]):
                _kill_group(saved["pgid"], pid)
            for fd in saved.get("log", {}).get("fds", []) + saved.get("notify", [-1])[:1]:
                _close(fd)
            continue
        for field in SERVICE_FIELDS:
            setattr(svc, field, saved[field])
        svc.starts.extend(saved["starts"])
        for pid in (svc.pid, svc.launcher):
            if pid:
                sup.track(pid, svc)
        if "log" in saved and svc.log is not None:
            sup.loop.remove(svc.log.read_fd)
            svc.log.adopt(*saved["log"]["fds"])
            svc.log.partial = saved["log"]["partial"].encode("latin-1")
            svc.log.memory.extend(m.encode("latin-1") for m in saved["log"]["memory"])
            svc.log.memory_bytes = sum(len(m) for m in svc.log.memory)
            svc.log.dropped, svc.log.lines = saved["log"]["dropped"], saved["log"]["lines"]
            sup.loop.add(svc.log.read_fd, lambda _mask, log=svc.log: log.on_readable())
        elif "log" in saved:
            for fd in saved["log"]["fds"]:
                _close(fd)
        if "notify" in saved:
            svc.notify_fd, svc.notify_path = saved["notify"]
            os.set_inheritable(svc.notify_fd, False)
            sup.loop.add(svc.notify_fd, lambda _mask, s=svc: sup._on_notify(s))
        if "timer" in saved:
            method, when = saved["timer"]
            svc.timer = sup.loop.call_at(max(when, now), getattr(svc, method))
    # services that are new in the unit files start now, as after a reload
    sup.start([n for n, s in sup.services.items()
               if n not in state["services"] and s.unit.enabled])
    # whatever exited while we were exec'ing is reaped now
    sup.reap()
    if state["scheduled"]:
        s = state["scheduled"]
        init.schedule(s["action"], s["when"], s["wall"], s["message"])
    logs.say(f"resumed after re-exec #{init.reexecs}: {sup.state_line()}")


def _kill_group(pgid: int, pid: int) -> None:
    for target in (-pgid if pgid else 0, pid):
        if target:
            try:
                os.kill(target, signal.SIGTERM)
            except OSError:
                pass


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
