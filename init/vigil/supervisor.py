"""The set of services: loading units, starting in dependency order, reaping, stopping
in reverse order, reloading.

Every state change of a service comes back here through on_state_change(), which looks
only at that service's neighbours in the graph: the units ordered after it (may they
start now? must they stop, as they require it?) and the units it is ordered after (in a
stop in reverse order, may they stop now?).
"""

import os
import socket
from collections import deque
from collections.abc import Callable

from vigil import graph, logs
from vigil.loop import Loop
from vigil.service import FAILED, STOPPED, STOPPING, Service
from vigil.unit import Catalog, Unit, UnitError, read_in_child


class Supervisor:
    def __init__(self, loop: Loop, unit_dirs: list[str], log_dir: str, runtime_dir: str,
                 base_env: dict[str, str], import_root: str | None = None):
        self.loop = loop
        self.unit_dirs = unit_dirs
        self.import_root = import_root      # where systemd/init.d units are imported from
        self.log_dir = log_dir
        self.runtime_dir = runtime_dir
        self.base_env = base_env
        self.services: dict[str, Service] = {}
        self.errors: dict[str, UnitError] = {}
        self.cycles: list[list[str]] = []
        self.after: dict[str, set[str]] = {}
        self.rev: dict[str, set[str]] = {}
        self.pids: dict[int, Service] = {}
        self.roots: list[str] = []          # units started at boot besides the enabled ones
        self.pending_stop: dict[str, bool] = {}   # name -> start again once stopped
        self.on_all_stopped: Callable[[], None] | None = None
        self.problems: dict[str, str] = {}  # boot problems for status (e.g. fstab)
        self._changed: deque[str] = deque()
        self._busy = False
        self._null_fd = -1
        self.catalog: Catalog | None = None

    # --- loading ---------------------------------------------------------------
    def load(self) -> None:
        self.catalog = read_in_child(self.unit_dirs, self.import_root)
        for _name, err in sorted(self.catalog.errors.items()):
            logs.error(str(err))
        self.errors = dict(self.catalog.errors)
        for _name, unit in sorted(self.catalog.units.items()):
            self._add(unit)
        self._rebuild_graph()

    def _add(self, unit: Unit) -> Service:
        svc = Service(unit, self)
        self.services[unit.name] = svc
        self._setup_log(svc)
        return svc

    def _setup_log(self, svc: Service) -> None:
        unit = svc.unit
        if unit.log == "file" and svc.log is None:
            svc.log = logs.ServiceLog(unit.name, self.log_dir, unit.log_max_size, unit.log_keep)
            self.loop.add(svc.log.read_fd, lambda _mask, log=svc.log: log.on_readable())
        elif unit.log != "file" and svc.log is not None:
            self.loop.remove(svc.log.read_fd)
            svc.log.close()
            svc.log = None
        if svc.log is not None:
            svc.log.max_size, svc.log.keep = unit.log_max_size, unit.log_keep

    def _forget(self, svc: Service) -> None:
        if svc.log is not None:
            self.loop.remove(svc.log.read_fd)
            svc.log.close()
            svc.log = None  # its process may still exit later: nothing to read then
        if svc.notify_fd >= 0:
            self.loop.remove(svc.notify_fd)
            os.close(svc.notify_fd)
            _unlink(svc.notify_path)
            svc.notify_fd = -1
        self.services.pop(svc.name, None)

    def _rebuild_graph(self) -> None:
        units = {n: s.unit for n, s in self.services.items()}
        self.after = graph.ordering(units)
        cycles = graph.break_cycles(self.after)
        for cycle in cycles:
            if cycle not in self.cycles:
                logs.error("ordering cycle " + " -> ".join(cycle) + f": ignoring that "
                           f"{cycle[-2]} is ordered after {cycle[-1]}")
        self.cycles = cycles
        self.rev = graph.dependents(self.after)

    def lookup(self, name: str) -> Service | None:
        """A service by name; a template instance (getty@tty2) is made on first use."""
        svc = self.services.get(name)
        if svc is None and self.catalog is not None and "@" in name:
            unit = self.catalog.get(name)
            if unit is not None:
                svc = self._add(unit)
                self._rebuild_graph()
            elif name in self.catalog.errors:
                self.errors[name] = self.catalog.errors[name]
        return svc

    # --- starting --------------------------------------------------------------
    def boot(self, extra: list[str] = (), only: list[str] | None = None) -> None:
        """Start the enabled units, the extra ones (gettys) and all they pull in; or, with
        `only` (rescue mode, vigil.unit=), just those units and what they pull in."""
        self.roots = list(extra)
        for name in self.roots + list(only or []):
            self.lookup(name)
        if only is not None:
            missing = [n for n in only if n not in self.services]
            for name in missing:
                logs.error(f"{name}: asked for on the kernel command line, but no such unit")
            self.start([n for n in only if n in self.services])
            return
        roots = [n for n, s in self.services.items() if s.unit.enabled] + self.roots
        self.start(roots)

    def start(self, names: list[str]) -> None:
        units = {n: s.unit for n, s in self.services.items()}
        todo = graph.pulled_in(names, units)
        for name in sorted(todo):
            self.pending_stop.pop(name, None)
        self._busy = True  # all are wanted before any of them looks at the others
        try:
            for name in sorted(todo):
                self.services[name].want()
        finally:
            self._busy = False
        for name in sorted(todo):
            self._consider_start(self.services[name])
        self._drain()

    def _consider_start(self, svc: Service) -> None:
        if not svc.waiting() or svc.name in self.pending_stop:
            return
        for dep in sorted(self.after.get(svc.name, ())):
            d = self.services[dep]
            if dep in svc.unit.requires and (d.state == FAILED or
                                             (d.state == STOPPED and not d.wanted)):
                svc.dependency_failed(dep, "failed" if d.state == FAILED else "is stopped")
                return
            if d.ready and dep not in self.pending_stop:
                continue
            if d.wanted or d.up or d.state == STOPPING:
                svc.reason = f"waiting for {dep} ({d.state})"
                return
        svc.launch()

    # --- stopping --------------------------------------------------------------
    def stop(self, names: list[str], then_start: bool = False) -> None:
        """Stop these units, each only once the units ordered after it have stopped."""
        for name in names:
            self.pending_stop[name] = then_start
            if not then_start:
                self.services[name].wanted = False
        for name in sorted(names):
            self._consider_stop(name)

    def _consider_stop(self, name: str) -> None:
        if name not in self.pending_stop:
            return
        for later in sorted(self.rev.get(name, ())):
            if later in self.pending_stop or self.services[later].state == STOPPING:
                self.services[name].reason = f"waiting for {later} to stop"
                return
        self.services[name].stop(then_start=self.pending_stop.pop(name))

    def requiring(self, name: str) -> set[str]:
        """Units that require `name`, transitively."""
        found: set[str] = set()
        todo = [name]
        while todo:
            n = todo.pop()
            for other, svc in self.services.items():
                if n in svc.unit.requires and other not in found:
                    found.add(other)
                    todo.append(other)
        return found

    def restart(self, name: str) -> None:
        group = [name] + sorted(n for n in self.requiring(name)
                                if self.services[n].up or self.services[n].wanted)
        for n in group:
            self.services[n].wanted = True
        self.stop(group, then_start=True)

    def shutdown(self, when_done: Callable[[], None]) -> None:
        self.on_all_stopped = when_done
        self.stop(list(self.services))
        self._check_all_stopped()

    def _check_all_stopped(self) -> None:
        if self.on_all_stopped and not self.pending_stop and \
                not any(s.up for s in self.services.values()):
            done, self.on_all_stopped = self.on_all_stopped, None
            done()

    # --- events ----------------------------------------------------------------
    def on_state_change(self, svc: Service) -> None:
        """Called by a service after each transition; handles the neighbours, one at a time."""
        self._changed.append(svc.name)
        if not self._busy:
            self._drain()

    def _drain(self) -> None:
        self._busy = True
        try:
            while self._changed:
                self._neighbours(self._changed.popleft())
            self._check_all_stopped()
        finally:
            self._busy = False

    def _neighbours(self, name: str) -> None:
        svc = self.services.get(name)
        if svc is None:
            return
        gone = svc.state == FAILED or (svc.state == STOPPED and not svc.wanted)
        for later in sorted(self.rev.get(name, ())):
            other = self.services[later]
            if gone and name in other.unit.requires and (other.up or other.wanted) \
                    and later not in self.pending_stop:
                why = f"dependency {name} {'failed' if svc.state == FAILED else 'stopped'}"
                if other.up:
                    other.stop(why=why)
                else:
                    other.dependency_failed(name, why.split(" ", 2)[2])
            else:
                self._consider_start(other)
        self._consider_start(svc)
        if not svc.up:
            for earlier in sorted(self.after.get(name, ())):
                self._consider_stop(earlier)

    def track(self, pid: int, svc: Service) -> None:
        self.pids[pid] = svc

    def reap(self) -> int:
        """waitpid(-1) until nothing is left: our services, and orphans that are not ours."""
        reaped = 0
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            reaped += 1
            svc = self.pids.pop(pid, None)
            if svc is not None:
                try:
                    svc.on_exit(pid, status)
                except Exception as e:  # noqa: BLE001 - one service's bug must not stop reaping
                    logs.error(f"{svc.name}: error handling exit: {e!r}")
        return reaped

    # --- what services need from here --------------------------------------------
    def output_fd(self, unit: Unit) -> int:
        if unit.log == "console":
            return 2
        if self._null_fd < 0:
            self._null_fd = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
        return self._null_fd

    def notify_socket(self, svc: Service) -> str:
        """The sd_notify socket of a notify service: its own, so no pid lookup is needed."""
        if svc.unit.type != "notify":
            return ""
        if svc.notify_fd < 0:
            directory = os.path.join(self.runtime_dir, "notify")
            os.makedirs(directory, mode=0o755, exist_ok=True)
            path = os.path.join(directory, svc.name)
            _unlink(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK
                                 | socket.SOCK_CLOEXEC)
            sock.bind(path)
            os.chmod(path, 0o600)  # only root and the service's user (Service.launch) may send
            svc.notify_fd, svc.notify_path = sock.detach(), path
            self.loop.add(svc.notify_fd, lambda _mask, s=svc: self._on_notify(s))
        return svc.notify_path

    def _on_notify(self, svc: Service) -> None:
        while True:
            try:
                data = os.read(svc.notify_fd, 4096)
            except BlockingIOError:
                return
            svc.on_notify(data.decode(errors="replace"))

    # --- reload ----------------------------------------------------------------
    def reload(self) -> dict:
        """Re-read the unit directories: start new units, stop removed ones, restart changed
        ones, leave unchanged ones alone. A file that no longer validates keeps its old
        definition in force."""
        new = read_in_child(self.unit_dirs, self.import_root)
        self.catalog = new
        summary: dict[str, list[str]] = {"added": [], "removed": [], "changed": [],
                                         "invalid": []}
        self.errors = {}
        for name, err in sorted(new.errors.items()):
            self.errors[name] = err
            summary["invalid"].append(str(err))
            logs.error(str(err))
        for name in sorted(self.services):
            svc = self.services[name]
            if name in new.errors:
                continue  # keep the old definition
            unit = new.units.get(name) or (new.get(name) if "@" in name else None)
            if unit is None:
                summary["removed"].append(name)
            elif unit != svc.unit:
                summary["changed"].append(name)
        for name in sorted(new.units):
            if name not in self.services:
                summary["added"].append(name)
                self._add(new.units[name])
        for name in summary["changed"]:
            svc = self.services[name]
            svc.unit = new.units.get(name) or new.get(name)
            self._setup_log(svc)
        self._rebuild_graph()
        for name in summary["removed"]:
            svc = self.services[name]
            if svc.up:
                svc.stop(why="removed")
            self._forget(svc)
        running = [n for n in summary["changed"] if self.services[n].up]
        for name in running:
            self.restart(name)
        starts = [n for n in summary["added"] if self.services[n].unit.enabled]
        starts += [n for n in summary["changed"]
                   if n not in running and self.services[n].unit.enabled
                   and self.services[n].state != "done"]
        self.start(starts)
        for svc in self.services.values():
            if svc.log is not None:
                svc.log.flush_memory()
        logs.say("reloaded: " + ", ".join(f"{len(v)} {k}" for k, v in summary.items()))
        return summary

    def flush_logs(self) -> None:
        for svc in self.services.values():
            if svc.log is not None and svc.log.memory:
                svc.log.flush_memory()

    def state_line(self) -> str:
        counts: dict[str, int] = {}
        for svc in self.services.values():
            counts[svc.state] = counts.get(svc.state, 0) + 1
        return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
