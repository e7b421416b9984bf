"""All services together: start in dependency order, stop in reverse order, reap, reload.

The Supervisor owns the graph. After every transition of a service it looks at that
service's neighbours: the units ordered after it (may they start now? must they stop, as
they require it?) and the units it is ordered after (in a stop in reverse order, may they
stop now?). Each Service decides only about itself (vigil.service).

The policies that involve several units live here, as operations the control verbs call:
start (with what it pulls in), stop (with what requires it), restart (with what requires
it), rescue mode and back, shutdown, reload.
"""

import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from vigil import graph, logs, spawn
from vigil.command import Command
from vigil.loop import Loop
from vigil.service import DOWN, FAILED, STOPPED, STOPPING, UP, Service, Why
from vigil.unit import Catalog, Unit, UnitError, read_in_child


LAUNCH_BATCH = 64  # units launched per turn of the loop
NOTIFY_MAX = 4096  # an sd_notify datagram longer than this is ignored
_NO_COMMAND = Command(("/bin/true",))  # for a plan's credentials when a unit has no exec


class Processes:
    """What a Service may do with processes: the real thing (fork/exec, the pid table that
    reaping looks in, kill). Tests give a Service or a Supervisor a fake one."""

    def __init__(self, sup: "Supervisor"):
        self.sup = sup
        self.execs: dict[int, tuple[int, Service, str]] = {}  # pid -> (exec fd, svc, argv0)
        self.strays: dict[int, dict[int, int]] = {}  # pgid -> {pid: start} (see kill)
        self._snapshot = None
        self._snapshot_at = 0.0

    def spawn(self, svc: Service, command, env: dict[str, str]) -> tuple[int, bool]:
        """Start a command of svc; (pid, whether its exec is still to be heard of)."""
        sup = self.sup
        p = spawn.plan(svc.unit, sup.base_env, sup.notify_socket(svc), command, env)
        if command is svc.unit.exec:
            svc.uid = p.uid or 0
        if svc.notify_path and svc.uid:
            os.chown(svc.notify_path, svc.uid, -1)  # its user may send, others not
        out = svc.log.write_fd if svc.log else sup.output_fd(svc.unit)
        try:
            pid, exec_fd = spawn.spawn(p, out)
        finally:
            if svc.unit.log.startswith("append:"):
                os.close(out)
        self.track(svc, pid)
        self.execs[pid] = (exec_fd, svc, p.program)
        sup.loop.add(exec_fd, lambda _mask, pid=pid: self.exec_report(pid))
        return pid, True

    def exec_report(self, pid: int, block: bool = False) -> None:
        """The exec pipe of a forked child spoke (or the child exited, or a re-exec must
        know now): pass its answer to the service."""
        if pid not in self.execs:
            return
        fd, svc, argv0 = self.execs[pid]
        if block:
            os.set_blocking(fd, True)
        error = spawn.read_exec_error(fd, argv0)
        if error is None:
            return
        del self.execs[pid]
        self.sup.loop.remove(fd)
        os.close(fd)
        svc.on_exec(pid, error)

    def track(self, svc: Service, pid: int) -> None:
        self.sup.pids[pid] = svc

    def prepare(self, svc: Service) -> None:
        """Before a start: its directories, owned by its user."""
        unit = svc.unit
        if any(getattr(unit, key) for key in spawn.DIRECTORIES):
            p = spawn.plan(unit, {}, "", unit.exec or _NO_COMMAND)
            spawn.make_directories(unit, p.uid, p.gid)

    def cleanup(self, svc: Service) -> None:
        """After a stop: its runtime directories go, and what was known of its strays."""
        self.strays.pop(svc.pgid, None)
        if svc.unit.runtime_directory:
            spawn.remove_runtime_directories(svc.unit)

    @staticmethod
    def group_of(pid: int) -> int:
        try:
            return os.getpgid(pid)
        except OSError:
            return -1

    def kill(self, pgid: int, pid: int, sig: int) -> None:
        if not pgid:
            spawn.signal_service(pgid, pid, sig)
            return
        # A whole service: also what left its group (setsid), see proctree. Found before
        # the group is signalled: once the main process is dead its children are vigil's.
        strays = self._strays(pgid, pid)
        spawn.signal_service(pgid, pid, sig)
        for stray in strays:
            try:
                os.kill(stray, sig)
            except OSError:
                pass

    def _strays(self, pgid: int, pid: int) -> list[int]:
        """Strays are found while the main process lives (its descendants) and remembered
        for the SIGKILL after it has gone; one /proc scan serves a burst of stops."""
        from vigil import proctree
        now = time.monotonic()
        if self._snapshot is None or now - self._snapshot_at > 0.05:
            self._snapshot, self._snapshot_at = proctree.Snapshot(), now
        known = self.strays.setdefault(pgid, {})
        if pid:
            known.update(self._snapshot.strays(pid, pgid))
        for stray, started in list(known.items()):
            if self._snapshot.started(stray) != started:
                del known[stray]  # gone, or its pid is another process's now
        if not known:
            del self.strays[pgid]
        return list(known)


class Supervisor:
    def __init__(self, loop: Loop, unit_dirs: list[str], log_dir: str, runtime_dir: str,
                 base_env: dict[str, str], import_root: str | None = None,
                 procs: Callable[["Supervisor"], object] = Processes):
        self.loop = loop
        self.unit_dirs = unit_dirs
        self.import_root = import_root      # where systemd/init.d units are imported from
        self.log_dir = log_dir
        self.runtime_dir = runtime_dir
        self.base_env = base_env
        self.procs = procs(self)
        self.services: dict[str, Service] = {}
        self.errors: dict[str, UnitError] = {}
        self.cycles: list[list[str]] = []
        self.after: dict[str, set[str]] = {}
        self.rev: dict[str, set[str]] = {}
        self.alias: dict[str, str] = {}     # alias -> the unit's own name
        self.requires: dict[str, set[str]] = {}  # each unit's requires, aliases resolved
        self.conflicts: dict[str, set[str]] = {}
        self.pids: dict[int, Service] = {}
        self.roots: list[str] = []          # units started at boot besides the enabled ones
        self.on_all_stopped: Callable[[], None] | None = None
        self.problems: dict[str, str] = {}  # boot problems for status (e.g. fstab)
        self._changed: deque[str] = deque()
        self._busy = False
        self._null_fd = -1
        self._notify: dict[int, socket.socket] = {}  # notify fd -> its socket
        self.catalog: Catalog | None = None
        self._going_down: set[str] = set()  # up when the shutdown began (_check_all_stopped)
        self._launch_timer = None
        self._launched = 0                  # launches in this turn of the loop
        self._queued: dict[Service, None] = {}  # ready to launch in a later turn, in order

    # --- loading ---------------------------------------------------------------
    def load(self, catalog: Catalog | None = None) -> None:
        """The units of the unit directories and the import root (parsed in a child), or
        of a given catalog."""
        self.catalog = catalog if catalog is not None else \
            read_in_child(self.unit_dirs, self.import_root)
        for _name, err in sorted(self.catalog.errors.items()):
            logs.error(str(err))
        self.errors = dict(self.catalog.errors)
        for _name, unit in sorted(self.catalog.units.items()):
            self._add(unit)
        self._rebuild_graph()

    def _add(self, unit: Unit) -> Service:
        svc = Service(unit, self.loop, self.procs, self.on_state_change)
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
            self._notify.pop(svc.notify_fd).close()
            _quietly(os.unlink, svc.notify_path)
            svc.notify_fd = -1
        self.services.pop(svc.name, None)

    def _rebuild_graph(self) -> None:
        units = {n: s.unit for n, s in self.services.items()}
        self.alias = {**graph.aliases(units),  # the catalog knows alias links too
                      **(self.catalog.aliases if self.catalog is not None else {})}
        self.requires = {n: graph.resolve(u.requires, self.alias) for n, u in units.items()}
        self.conflicts: dict[str, set[str]] = {}  # both ways: either side may name the other
        for name, unit in units.items():
            for other in graph.resolve(unit.conflicts, self.alias):
                if other in units and other != name:
                    self.conflicts.setdefault(name, set()).add(other)
                    self.conflicts.setdefault(other, set()).add(name)
        self.after = graph.ordering(units, self.alias)
        cycles = graph.break_cycles(self.after)
        for cycle in cycles:
            if cycle not in self.cycles:
                logs.error("ordering cycle " + " -> ".join(cycle) + f": ignoring that "
                           f"{cycle[-2]} is ordered after {cycle[-1]}")
        self.cycles = cycles
        self.rev = graph.dependents(self.after)

    def lookup(self, name: str) -> Service | None:
        """A service by name or alias; a template instance (getty@tty2) is made on first
        use."""
        svc = self.services.get(self.alias.get(name, name))
        if svc is None and self.catalog is not None and "@" in name:
            unit = self.catalog.get(name)
            if unit is not None:
                svc = self._add(unit)
                self._rebuild_graph()
            elif name in self.catalog.errors:
                self.errors[name] = self.catalog.errors[name]
        return svc

    # --- operations (what the control verbs and boot ask for) ---------------------
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
        self.start(self._default_set())

    def _default_set(self) -> list[str]:
        """What the machine runs normally: the enabled units and the extra roots (gettys).
        An inittab getty on a terminal that vigil's own getty@ already serves is left out:
        two logins on one terminal fight over it."""
        ttys = {r.split("@", 1)[1] for r in self.roots if r.startswith("getty@")}
        inittab = self.catalog.gettys if self.catalog is not None else {}
        return [n for n, s in self.services.items()
                if s.unit.enabled and inittab.get(n) not in ttys] + self.roots

    def start(self, names: list[str]) -> None:
        """Start these units and what they require or want, each once what it is ordered
        after is ready."""
        units = {n: s.unit for n, s in self.services.items() if not s.unit.masked}
        todo = sorted(graph.pulled_in(names, units, self.alias))  # a masked unit never starts
        conflicting = self._conflicting(todo)
        if conflicting:
            self._stop_group(conflicting)
        with self._batch():  # all are wanted before any of them looks at the others
            for name in todo:
                self.services[name].want()
            for name in todo:
                self._consider_start(self.services[name])
        self._drain()

    def stop(self, names: list[str], cause: Why | None = None) -> None:
        """Stop these units and what requires them, each only once the units ordered after
        it have stopped."""
        cause = cause or Why("stopped")
        group = {n: cause for n in graph.resolve(names, self.alias)}
        for name in list(group):
            for other in self.requiring(name) | self.parts(name):
                group.setdefault(other, Why("dependency", unit=name, how="stopped"))
        self._stop_group(group)

    def restart(self, names: list[str]) -> None:
        """Stop each unit and what requires it (and runs), then start them again."""
        group = graph.resolve(names, self.alias)
        for name in list(group):
            group |= {n for n in self.requiring(name) | self.parts(name)
                      if self.services[n].up or self.services[n].goal == UP}
        with self._batch():
            for name in sorted(group):
                self.services[name].request_restart()
            for name in sorted(group):
                self._consider_stop(self.services[name])
        self._drain()

    def rescue(self) -> list[str]:
        """telinit 1/S: stop everything not marked rescue, start the rescue units."""
        keep = sorted(n for n, s in self.services.items() if s.unit.rescue)
        self.stop([n for n, s in sorted(self.services.items())
                   if n not in keep and (s.up or s.goal == UP)], Why("rescue"))
        self.start(keep)
        return keep

    def resume_default(self) -> list[str]:
        """telinit 2-5: back to the normal state: the enabled units and the gettys."""
        self.stop([n for n, s in sorted(self.services.items())
                   if s.unit.rescue and not s.unit.enabled and (s.up or s.goal == UP)])
        names = self._default_set()
        self.start(names)
        return sorted(names)

    def shutdown(self, when_done: Callable[[], None]) -> None:
        self.on_all_stopped = when_done
        self._going_down = {n for n, s in self.services.items() if s.up}
        self._stop_group({n: Why("shutdown") for n in self.services})
        self._check_all_stopped()

    def requiring(self, name: str) -> set[str]:
        """Units that require `name`, transitively."""
        found: set[str] = set()
        todo = [name]
        while todo:
            n = todo.pop()
            for other in self.services:
                if n in self.requires.get(other, ()) and other not in found:
                    found.add(other)
                    todo.append(other)
        return found

    def parts(self, name: str) -> set[str]:
        """Units that are part_of `name`: its stop and restart are theirs too."""
        return {n for n, s in self.services.items()
                if name in graph.resolve(s.unit.part_of, self.alias)}

    def _conflicting(self, starting: list[str]) -> dict[str, Why]:
        """Units to stop because a unit about to start conflicts with them (either side
        may name the other)."""
        out: dict[str, Why] = {}
        for name in starting:
            for other in sorted(self.conflicts.get(name, ())):
                o = self.services[other]
                if o.up or o.goal == UP:
                    out.setdefault(other, Why("conflict", unit=name))
        return out

    def reload_units(self, names: list[str]) -> dict[str, str]:
        """vigilctl reload UNIT...: each unit's exec_reload, or SIGHUP; name -> what."""
        return {n: self.services[n].reload() for n in graph.resolve(names, self.alias)}

    # --- the neighbours ----------------------------------------------------------
    def _stop_group(self, group: dict[str, Why]) -> None:
        with self._batch():  # every one is stopping before any looks at the others
            for name in sorted(group):
                self.services[name].request_stop(group[name])
            for name in sorted(group):
                self._consider_stop(self.services[name])
        self._drain()

    def _consider_start(self, svc: Service) -> None:
        if not svc.waiting():
            return
        for dep in sorted(graph.resolve(svc.unit.requisite, self.alias)):
            d = self.services.get(dep)
            if d is None or not (d.ready or d.up or d.goal == UP):
                svc.requisite_missing(dep, d.state if d else "no such unit")
                return
        for dep in sorted(self.after.get(svc.name, ())):
            d = self.services[dep]
            if dep in self.requires[svc.name] and (d.state == FAILED or
                                                   (d.state == STOPPED and d.goal == DOWN)):
                svc.dependency_failed(dep, "failed" if d.state == FAILED else
                                      "is masked" if d.unit.masked else "is stopped")
                return
            if d.ready:
                continue
            if d.goal == UP or d.up:
                svc.wait_for(dep, d.state)
                return
        self._launch(svc)

    def _launch(self, svc: Service) -> None:
        """Launch now, or in a later turn of the loop once LAUNCH_BATCH units were launched
        in this one: a boot of 1000 units leaves the loop free to answer vigilctl and reap
        between batches."""
        if self._launch_timer is None:
            self._launched = 0
            self._launch_timer = self.loop.call_later(0, self._next_batch)
        if self._launched < LAUNCH_BATCH:
            self._launched += 1
            svc.launch()
        elif svc not in self._queued:
            self._queued[svc] = None
            svc.why = Why("queued")

    def _next_batch(self) -> None:
        """A new turn of the loop: the next LAUNCH_BATCH queued units, in the order they were
        queued (the others stay queued untouched: a big start costs each unit once)."""
        self._launch_timer = None
        self._launched = 0
        batch = list(self._queued)[:LAUNCH_BATCH]
        for svc in batch:
            del self._queued[svc]
        if batch:  # the end of this turn; the next one takes the next batch
            self._launch_timer = self.loop.call_later(0, self._next_batch)
        with self._batch():
            for svc in batch:
                self._consider_start(svc)  # it may have been stopped meanwhile
        self._drain()

    def _consider_stop(self, svc: Service) -> None:
        if (svc.state, svc.phase) != (STOPPING, "dependents"):
            return
        for later in sorted(self.rev.get(svc.name, ())):
            if self.services[later].state == STOPPING:
                svc.wait_to_stop(later)
                return
        svc.signal_stop()

    def on_state_change(self, svc: Service) -> None:
        """Called by a service after each transition; handles the neighbours, one at a time
        (a queue, not recursion: a start of 1000 units is a loop, not a 1000-deep stack)."""
        self._changed.append(svc.name)
        if not self._busy:
            self._drain()

    def _batch(self):
        return _Batch(self)

    def _drain(self) -> None:
        with self._batch():
            while self._changed:
                self._neighbours(self._changed.popleft())
            self._check_all_stopped()

    def _neighbours(self, name: str) -> None:
        svc = self.services.get(name)
        if svc is None:
            return
        gone = svc.state == FAILED or (svc.state == STOPPED and svc.goal == DOWN)
        how = "failed" if svc.state == FAILED else "stopped"
        for later in sorted(self.rev.get(name, ())):
            other = self.services[later]
            if gone and name in self.requires[later] and other.state != STOPPING \
                    and (other.up or other.goal == UP):
                if other.up:
                    other.request_stop(Why("dependency", unit=name, how=how))
                    self._consider_stop(other)
                else:
                    other.dependency_failed(name, how)
            else:
                self._consider_start(other)
        self._consider_start(svc)
        if not svc.up:
            for earlier in sorted(self.after.get(name, ())):
                self._consider_stop(self.services[earlier])

    def _check_all_stopped(self) -> None:
        """During a shutdown: call back once none of the units that were up is up. Each is
        looked at until it is down, then forgotten (one look per unit per exit would make a
        shutdown of 1000 units a million looks)."""
        if not self.on_all_stopped:
            return
        while self._going_down:
            name = next(iter(self._going_down))
            svc = self.services.get(name)
            if svc is not None and svc.up:
                return
            self._going_down.discard(name)
        done, self.on_all_stopped = self.on_all_stopped, None
        done()

    # --- processes ---------------------------------------------------------------
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
            self.child_exited(pid, status)
        return reaped

    def child_exited(self, pid: int, status: int) -> None:
        self.procs.exec_report(pid)  # a child that ends before its exec pipe was read
        svc = self.pids.pop(pid, None)
        if svc is not None:
            try:
                svc.on_exit(pid, status)
            except Exception as e:  # noqa: BLE001 - one service's bug must not stop reaping
                logs.error(f"{svc.name}: error handling exit: {e!r}")

    def output_fd(self, unit: Unit) -> int:
        """Where a service without a log pipe writes: the console, an append:PATH file
        (opened for each start; the caller closes it), or /dev/null."""
        if unit.log == "console":
            return 2
        if unit.log.startswith("append:"):
            path = unit.log[len("append:"):]
            try:
                return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            except OSError as e:
                raise spawn.SpawnError(f"log {path}: {e.strerror}") from None
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
            _quietly(os.unlink, path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK
                                 | socket.SOCK_CLOEXEC)
            sock.bind(path)
            os.chmod(path, 0o600)  # only root and the service's user (Processes.spawn) may send
            svc.notify_path = path
            self._watch_notify(svc, sock)
        return svc.notify_path

    def _watch_notify(self, svc: Service, sock: socket.socket) -> None:
        # The kernel tells each datagram's sender (SO_PASSCRED): notify_access needs it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        svc.notify_fd = sock.fileno()
        self._notify[svc.notify_fd] = sock
        self.loop.add(svc.notify_fd, lambda _mask, s=svc: self._on_notify(s))

    def _on_notify(self, svc: Service) -> None:
        sock = self._notify[svc.notify_fd]
        while True:
            try:
                data, ancillary, flags, _addr = sock.recvmsg(NOTIFY_MAX, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                continue  # oversized: not a message of the protocol
            sender = None
            for level, kind, cred in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS) \
                        and len(cred) >= 12:
                    sender = struct.unpack_from("3i", cred)[0]
            svc.on_notify(data.decode(errors="replace"), sender)

    # --- reload ----------------------------------------------------------------
    def reload(self, catalog: Catalog | None = None) -> dict:
        """Re-read the unit directories: start new units, stop removed ones, restart changed
        ones, leave unchanged ones alone. A file that no longer validates keeps its old
        definition in force."""
        new = catalog if catalog is not None else read_in_child(self.unit_dirs, self.import_root)
        self.catalog = new
        # invalid: a changed file that does not validate (its old definition stays);
        # broken: a file that never had a valid definition (nothing runs from it)
        summary: dict[str, list[str]] = {"added": [], "removed": [], "changed": [],
                                         "invalid": [], "broken": []}
        self.errors = {}
        for name, err in sorted(new.errors.items()):
            self.errors[name] = err
            summary["invalid" if name in self.services else "broken"].append(str(err))
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
        with self._batch():  # removed units stop at once and are forgotten before the
            for name in summary["removed"]:  # graph is rebuilt (or their cycles would stay)
                svc = self.services[name]
                svc.request_stop(Why("removed"))
                if (svc.state, svc.phase) == (STOPPING, "dependents"):
                    svc.signal_stop()
                self._forget(svc)
        self._rebuild_graph()
        running = [n for n in summary["changed"] if self.services[n].up]
        if running:
            self.restart(running)
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

    # --- carried over a re-exec, and shown by `vigilctl dump` -----------------------
    def snapshot(self) -> dict:
        return {"services": {n: s.snapshot() for n, s in self.services.items()},
                "roots": self.roots, "problems": self.problems}

    def restore(self, state: dict) -> None:
        """Give the services read from the unit files their runtime state from before."""
        self.roots = state["roots"]
        for name in self.roots:
            self.lookup(name)
        self.problems.update(state["problems"])
        for name, saved in state["services"].items():
            svc = self.services.get(name)
            if svc is None:  # its file is gone: do what a reload would do
                logs.warn(f"{name}: no unit file after re-exec, stopping it")
                _stop_orphaned(saved)
                continue
            svc.restore(saved)
            for pid in (svc.pid, svc.control):
                if pid:
                    self.pids[pid] = svc
            if "log" in saved:
                if svc.log is not None:
                    self.loop.remove(svc.log.read_fd)
                    svc.log.restore(saved["log"])
                    self.loop.add(svc.log.read_fd, lambda _mask, log=svc.log: log.on_readable())
                else:
                    logs.ServiceLog.discard(saved["log"])
            if "notify" in saved:
                fd, svc.notify_path = saved["notify"]
                os.set_inheritable(fd, False)
                self._watch_notify(svc, socket.socket(fileno=fd))
        # services that are new in the unit files start now, as after a reload
        self.start([n for n, s in self.services.items()
                    if n not in state["services"] and s.unit.enabled])
        self.reap()  # whatever exited while we were exec'ing

    def inherited_fds(self) -> list[int]:
        """The descriptors a re-exec must keep open: log pipes and notify sockets. Children
        still on their way to exec are waited for first: their pipes do not survive."""
        for pid in list(self.procs.execs):
            self.procs.exec_report(pid, block=True)
        fds = []
        for svc in self.services.values():
            if svc.log is not None:
                fds += [svc.log.read_fd, svc.log.write_fd]
            if svc.notify_fd >= 0:
                fds.append(svc.notify_fd)
        return fds


class _Batch:
    """While a batch runs, transitions are queued and their neighbours handled after."""

    def __init__(self, sup: Supervisor):
        self.sup, self.outer = sup, sup._busy

    def __enter__(self):
        self.sup._busy = True

    def __exit__(self, *exc):
        self.sup._busy = self.outer


def _stop_orphaned(saved: dict) -> None:
    """A service whose unit file vanished across a re-exec: TERM its processes, close its
    descriptors."""
    for pid in (saved["pid"], saved["control"]):
        spawn.signal_service(saved["pgid"], pid, 15)
    if "log" in saved:
        logs.ServiceLog.discard(saved["log"])
    if "notify" in saved:
        _quietly(os.close, saved["notify"][0])


def _quietly(fn: Callable, *args) -> None:
    """An os call whose failure changes nothing here (the fd or file is already gone)."""
    try:
        fn(*args)
    except OSError:
        pass
