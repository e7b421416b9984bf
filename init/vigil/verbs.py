"""What each control-socket verb does: it translates the request into a Supervisor or
Shutdown operation and the result into JSON. Policy lives in those, not here.

Each handler takes the verb's arguments (their count already checked against
control.VERBS) and returns a JSON-able result, or raises RequestError with vigilctl's exit
code (2 usage, 3 not running, 4 no such unit).
"""

import os
import time

from vigil import VERSION
from vigil.control import PROTOCOL, RequestError
from vigil.service import Why
from vigil.supervisor import Supervisor


class Verbs:
    def __init__(self, sup: Supervisor, init, started: float):
        self.sup = sup
        self.init = init        # main.Init: .down (power, schedule, cancel), reexec()
        self.started = started  # wall-clock time vigil started

    def __call__(self, verb: str, args: list[str], uid: int):
        return getattr(self, "verb_" + verb)(args)

    # --- reading ---------------------------------------------------------------
    def verb_ping(self, args):
        return "pong"

    def verb_version(self, args):
        return {"version": VERSION, "protocol": PROTOCOL, "pid": os.getpid(),
                "reexecs": self.init.reexecs}

    def _invalid(self, name: str) -> dict:
        err = self.sup.errors[name]
        return {"name": name, "state": "failed", "pid": None, "restarts": 0, "since": None,
                "last_exit": None, "why": Why("invalid", error=str(err)).to_json(),
                "path": err.path}

    def _units(self, names: list[str]) -> list[str]:
        for name in names:
            if self.sup.lookup(name) is None and name not in self.sup.errors:
                raise RequestError(f"no such unit: {name}", 4)
        return names

    def verb_list(self, args):
        rows = [s.info() for _, s in sorted(self.sup.services.items())]
        rows += [self._invalid(n) for n in sorted(self.sup.errors)
                 if n not in self.sup.services]
        return sorted(rows, key=lambda r: r["name"])

    def verb_status(self, args):
        if not args:
            return {"units": self.verb_list([]), "problems": self.sup.problems,
                    "cycles": self.sup.cycles, "pid": os.getpid(),
                    "since": self.started, "summary": self.sup.state_line(),
                    "scheduled": self.init.down.scheduled}
        out = []
        for name in self._units(args):
            svc = self.sup.lookup(name)
            info = svc.info() if svc else self._invalid(name)
            if svc and name in self.sup.errors:
                info["rejected"] = str(self.sup.errors[name])  # the old definition runs on
            if svc:
                info["requires"] = list(svc.unit.requires)
                info["after"] = sorted(self.sup.after.get(name, ()))
                info["exec"] = svc.unit.exec.words() if svc.unit.exec else []
            out.append(info)
        return out

    def verb_logs(self, args):
        name = self._units(args[:1])[0]
        svc = self.sup.services.get(name)
        if svc is None or svc.log is None:
            raise RequestError(f"{name} does not log to a file", 1)
        return {"path": svc.log.path, "keep": svc.log.keep,
                "memory": svc.log.tail_in_memory(), "dropped": svc.log.dropped,
                "error": svc.log.last_error}

    def verb_dump(self, args):
        """The supervisor's state as a re-exec carries it, with each unit's effective
        configuration beside it, for a person to read."""
        state = self.sup.snapshot()
        for name, saved in state["services"].items():
            svc = self.sup.services[name]
            saved["config"] = _jsonable(svc.unit.settings())
            saved["after"] = sorted(self.sup.after.get(name, ()))
        state.update(errors={n: str(e) for n, e in self.sup.errors.items()},
                     cycles=self.sup.cycles, unit_dirs=self.sup.unit_dirs,
                     log_dir=self.sup.log_dir, tracked_pids=sorted(self.sup.pids),
                     pid=os.getpid(), since=self.started, now=time.time())
        return state

    def verb_analyze(self, args):
        """Each unit's times (loop seconds: when its start was asked for, launched, ready,
        its last change) with what it is ordered after, and stage 1's steps; vigilctl
        analyze (vigil.analyze) makes blame, critical-chain and plot of them."""
        units = []
        for name, s in sorted(self.sup.services.items()):
            asked = s.requested or None
            # unrounded: analyze compares a unit's ready time with the launch it allowed
            ready = None if s.ready_after is None or asked is None else asked + s.ready_after
            launched = s.launched if ready is not None else (
                s.started if asked is not None and s.started >= asked else None)
            units.append({"name": name, "state": s.state, "requested": asked,
                          "launched": launched, "ready": ready, "ready_after": s.ready_after,
                          "changed": s.last_change or None, "waited_for": s.waited_for,
                          "after": sorted(self.sup.after.get(name, ()))})
        return {"now": self.sup.loop.now(), "units": units,
                "steps": getattr(self.init, "boot_steps", [])}

    def verb_tree(self, args):
        """Each unit's processes, from vigil's own /proc (its PID namespace's pids)."""
        from vigil import proctree
        procs = proctree.process_table()
        return [{"name": n, "state": s.state, "processes": proctree.unit_tree(s.pid, procs)}
                for n, s in sorted(self.sup.services.items())]

    # --- changing --------------------------------------------------------------
    def verb_start(self, args):
        self.sup.start(self._need(args))
        return self._infos(args)

    def verb_stop(self, args):
        self.sup.stop(self._need(args))
        return self._infos(args)

    def verb_restart(self, args):
        self.sup.restart(self._need(args))
        return self._infos(args)

    def verb_reload(self, args):
        """Without units: re-read the unit files. With units: reload those services."""
        if not args:
            return self.sup.reload()
        try:
            return self.sup.reload_units(self._need(args))
        except OSError as e:
            raise RequestError(str(e), 3) from None

    def _power(self, action: str, args: list[str]):
        self.init.down.power(action, wall="--no-wall" not in args)
        return action

    def verb_poweroff(self, args):
        return self._power("poweroff", args)

    def verb_reboot(self, args):
        return self._power("reboot", args)

    def verb_halt(self, args):
        return self._power("halt", args)

    def verb_schedule(self, args):
        """schedule ACTION EPOCH WALL MESSAGE...: what shutdown(8) asks for."""
        if args[0] not in ("poweroff", "reboot", "halt") \
                or not args[1].isdigit() or args[2] not in ("0", "1"):
            raise RequestError("usage: schedule poweroff|reboot|halt EPOCH 0|1 [MESSAGE]", 2)
        self.init.down.schedule(args[0], float(args[1]), args[2] == "1", " ".join(args[3:]))
        return self.init.down.scheduled

    def verb_cancel(self, args):
        if not self.init.down.scheduled:
            raise RequestError("no shutdown is scheduled", 1)
        self.init.down.cancel()
        return "cancelled"

    def verb_rescue(self, args):
        """telinit 1/S."""
        return self.sup.rescue()

    def verb_default(self, args):
        """telinit 2-5."""
        return self.sup.resume_default()

    def verb_reexec(self, args):
        try:
            self.init.reexec()
        except OSError as e:
            raise RequestError(f"reexec: {e}", 1) from None
        return "re-executing"

    def _need(self, args: list[str]) -> list[str]:
        """The units named (aliases resolved); each must exist, be valid, not masked."""
        names = []
        for name in self._units(args):
            svc = self.sup.lookup(name)
            if svc is None:
                raise RequestError(f"{name}: invalid unit: {self.sup.errors[name]}", 1)
            if svc.unit.masked:
                raise RequestError(f"{name} is masked", 1)
            names.append(svc.name)
        return names

    def _infos(self, names: list[str]) -> list[dict]:
        return [self.sup.lookup(n).info() for n in names]


def _jsonable(settings: dict) -> dict:
    from vigil.unit import to_jsonable
    out = {k: to_jsonable(v) for k, v in settings.items()}
    out["environment"] = dict(settings["environment"])
    out["umask"] = f"{settings['umask']:03o}"  # as it is written in a unit file
    return out
