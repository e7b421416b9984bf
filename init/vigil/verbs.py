"""What each control-socket verb does, in terms of the supervisor.

Each handler takes the verb's arguments and returns a JSON-able result, or raises
RequestError with vigilctl's exit code (2 usage, 3 not running, 4 no such unit).
"""

import os
import time

from vigil import VERSION
from vigil.control import PROTOCOL, RequestError
from vigil.supervisor import Supervisor


class Verbs:
    def __init__(self, sup: Supervisor, init, started: float):
        self.sup = sup
        self.init = init        # main.Init: power(), schedule(), cancel(), scheduled
        self.started = started  # wall-clock time vigil started

    def __call__(self, verb: str, args: list[str], uid: int):
        handler = getattr(self, "verb_" + verb, None)
        if handler is None:
            raise RequestError(f"unknown verb {verb[:40]!r}", 2)
        return handler(args)

    # --- reading ---------------------------------------------------------------
    def verb_ping(self, args):
        return "pong"

    def verb_version(self, args):
        return {"version": VERSION, "protocol": PROTOCOL, "pid": os.getpid(),
                "reexecs": self.init.reexecs}

    def _invalid(self, name: str) -> dict:
        err = self.sup.errors[name]
        return {"name": name, "state": "failed", "pid": None, "restarts": 0, "since": None,
                "last_exit": None, "reason": f"invalid unit: {err}", "path": err.path}

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
                    "scheduled": self.init.scheduled}
        out = []
        for name in self._units(args):
            svc = self.sup.services.get(name)
            info = svc.info() if svc else self._invalid(name)
            if svc and name in self.sup.errors:
                info["reason"] += f" (new file rejected: {self.sup.errors[name]})"
            if svc:
                info["requires"] = list(svc.unit.requires)
                info["after"] = sorted(self.sup.after.get(name, ()))
                info["exec"] = svc.unit.exec.words() if svc.unit.exec else []
            out.append(info)
        return out

    def verb_logs(self, args):
        if not args:
            raise RequestError("usage: logs UNIT", 2)
        name = self._units(args[:1])[0]
        svc = self.sup.services.get(name)
        if svc is None or svc.log is None:
            raise RequestError(f"{name} does not log to a file", 1)
        return {"path": svc.log.path, "keep": svc.log.keep,
                "memory": svc.log.tail_in_memory(), "dropped": svc.log.dropped,
                "error": svc.log.last_error}

    def verb_dump(self, args):
        """Effective configuration and state of everything, for a person to read."""
        units = {}
        for name, svc in sorted(self.sup.services.items()):
            units[name] = {"config": _jsonable(svc.unit.settings()), "state": svc.info(),
                           "after": sorted(self.sup.after.get(name, ())),
                           "pending_stop": name in self.sup.pending_stop}
        return {"units": units, "errors": {n: str(e) for n, e in self.sup.errors.items()},
                "cycles": self.sup.cycles, "problems": self.sup.problems,
                "unit_dirs": self.sup.unit_dirs, "log_dir": self.sup.log_dir,
                "tracked_pids": sorted(self.sup.pids), "pid": os.getpid(),
                "since": self.started, "now": time.time()}

    def verb_analyze(self, args):
        """Time from each unit's start request to ready, slowest first (like `blame`)."""
        rows = [(s.ready_after, n) for n, s in self.sup.services.items()
                if s.ready_after is not None]
        return [{"name": n, "ready_after": t} for t, n in sorted(rows, reverse=True)]

    # --- changing --------------------------------------------------------------
    def verb_start(self, args):
        self.sup.start(self._need(args))
        return [self.sup.services[n].info() for n in args]

    def verb_stop(self, args):
        names = self._need(args)
        group = set(names)
        for n in names:
            group |= self.sup.requiring(n)
        self.sup.stop(sorted(group))
        return [self.sup.services[n].info() for n in args]

    def verb_restart(self, args):
        for name in self._need(args):
            self.sup.restart(name)
        return [self.sup.services[n].info() for n in args]

    def verb_reload(self, args):
        return self.sup.reload()

    def _power(self, action: str, args: list[str]):
        self.init.power(action, wall="--no-wall" not in args)
        return action

    def verb_poweroff(self, args):
        return self._power("poweroff", args)

    def verb_reboot(self, args):
        return self._power("reboot", args)

    def verb_halt(self, args):
        return self._power("halt", args)

    def verb_schedule(self, args):
        """schedule ACTION EPOCH WALL MESSAGE...: what shutdown(8) asks for."""
        if len(args) < 3 or args[0] not in ("poweroff", "reboot", "halt") \
                or not args[1].isdigit() or args[2] not in ("0", "1"):
            raise RequestError("usage: schedule poweroff|reboot|halt EPOCH 0|1 [MESSAGE]", 2)
        self.init.schedule(args[0], float(args[1]), args[2] == "1", " ".join(args[3:]))
        return self.init.scheduled

    def verb_cancel(self, args):
        if not self.init.scheduled:
            raise RequestError("no shutdown is scheduled", 1)
        self.init.cancel()
        return "cancelled"

    def verb_rescue(self, args):
        """telinit 1/S: stop everything not marked rescue, start the rescue units and shell."""
        keep = {n for n, s in self.sup.services.items() if s.unit.rescue}
        self.sup.stop(sorted(n for n, s in self.sup.services.items()
                             if n not in keep and (s.up or s.wanted)))
        self.sup.start(sorted(keep))
        return sorted(keep)

    def verb_default(self, args):
        """telinit 2-5: back to the normal state: the enabled units and the gettys."""
        rescue = [n for n, s in self.sup.services.items()
                  if s.unit.rescue and not s.unit.enabled and (s.up or s.wanted)]
        self.sup.stop(rescue)
        names = [n for n, s in self.sup.services.items() if s.unit.enabled] + self.sup.roots
        self.sup.start(names)
        return sorted(names)

    def verb_reexec(self, args):
        try:
            self.init.reexec()
        except OSError as e:
            raise RequestError(f"reexec: {e}", 1) from None
        return "re-executing"

    def _need(self, args: list[str]) -> list[str]:
        if not args:
            raise RequestError("usage: VERB UNIT...", 2)
        for name in self._units(args):
            if name not in self.sup.services:
                raise RequestError(f"{name}: invalid unit: {self.sup.errors[name]}", 1)
        return args


def _jsonable(settings: dict) -> dict:
    from vigil.unit import to_jsonable
    out = {k: to_jsonable(v) for k, v in settings.items()}
    out["environment"] = dict(settings["environment"])
    return out
