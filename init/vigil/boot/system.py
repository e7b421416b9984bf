"""Stage 1 after the essential mounts: one call brings the machine up to where units can run.

In order: vigil.toml (read once), kernel modules (the command line, vigil.toml,
/etc/modules, modules-load.d), the drivers of devices already present (vigil's own
coldplug, on a machine without udev: with udev its trigger unit does it, as under
systemd), the static device nodes of modules.devname, / remounted as fstab says, the
rest of fstab checked and mounted, swap, the
files Debian's initscripts made (/run/lock, /run/utmp, links, /tmp cleaned), sysctl.d and
/etc/sysctl.conf, the loopback interface, then hostname, timezone, locale and the random
seed, and last the units that depend on what this machine has (udev, remote-fs for the
_netdev entries of fstab), written to /run/vigil/units. Every step skips what is already
done and none of them raises: what fails is logged and comes back as a problem line
"AREA: what went wrong" (AREA is config, modules, fstab, swap, system, sysctl, network or
udev; `vigil.boot.problem_table` turns the lines into the supervisor's problems dict).

What fstab has is mounted here when its device is there; an entry whose device is not
there yet (and is not /usr or /var, which are waited for) becomes a mount unit that waits
for it in the loop, and only the units that require that mount wait with it. A swap device
that is not there becomes a swap unit, which nothing waits for.

PID 1 imports this module for `BootResult` and `rescue_mode`; the steps themselves run in a
child (`vigil.child`), so what they need (fstab, modules, settings: dataclasses, subprocess,
pyudev, zoneinfo, tomllib) is imported inside the functions that run there.
"""

import os
import sys
import time
from collections.abc import Callable

from vigil import logs
from vigil.boot import problem
from vigil.boot.cmdline import Cmdline
from vigil.unit import RUNTIME_UNITS


class BootResult:
    """What the boot steps hand back to PID 1, through JSON. A plain class: PID 1 holds it."""

    __slots__ = ("problems", "environment", "shutdown_timeout", "actions", "steps")

    def __init__(self, problems: list[str], environment: dict[str, str],
                 shutdown_timeout: float, actions: dict[str, str],
                 steps: list | None = None):
        self.problems = problems              # "AREA: text" lines
        self.environment = environment        # for services: TZ, LANG, LC_*
        self.shutdown_timeout = shutdown_timeout   # vigil.toml [shutdown] timeout
        self.actions = actions                # sigterm, ctrl_alt_del, power_failure -> action
        self.steps = steps or []              # [name, start, end]: CLOCK_MONOTONIC seconds

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_json(cls, data: object) -> "BootResult":
        """Raises ValueError when data is not what to_json made (a child that went wrong)."""
        if isinstance(data, dict) and set(data) == set(cls.__slots__):
            try:
                return cls(list(data["problems"]), dict(data["environment"]),
                           float(data["shutdown_timeout"]), dict(data["actions"]),
                           [[str(n), float(a), float(b)] for n, a, b in data["steps"]])
            except (TypeError, ValueError):
                pass
        raise ValueError(f"not a boot result: {data!r:.200}")


def bring_up_in_child(cmdline_text: str) -> dict:
    """child.run's entry point: bring_up, answered as JSON."""
    return bring_up(Cmdline(cmdline_text)).to_json()


def bring_up(cmdline: Cmdline, root: str = "/") -> BootResult:
    """The steps in order. root is where configuration is read from (/etc, /lib/modules)
    and generated units are written to (run/vigil/units); mounts, swap and the kernel
    settings always apply to the running system."""
    from vigil.boot import fstab, initscripts, network, seed, settings, swap, sysctl
    problems: list[str] = []
    steps: list[list] = []   # [name, start, end], for vigilctl analyze

    def step(area: str, what: str, fn: Callable[[], list[str]]) -> None:
        start = time.monotonic()
        try:
            found = fn()
        except Exception as e:  # noqa: BLE001 - a bug in one step must not stop the boot
            found = [f"{what}: internal error: {e!r}"]
            logs.error(f"{area}: {found[0]}")
        problems.extend(f"{area}: {p}" for p in found)
        steps.append([f"{area}: {what}", start, time.monotonic()])

    config = settings.Config()

    def read_config() -> list[str]:
        nonlocal config
        config, found = settings.load_config(root)
        for p in found:
            logs.error(p)
        return found

    step("config", "vigil.toml", read_config)
    coldplug = "off"

    def load_modules() -> list[str]:
        nonlocal coldplug
        coldplug = _coldplug_by(cmdline, config, root)
        return _modules(cmdline, config.modules, coldplug == "vigil", root)

    step("modules", "loading modules", load_modules)
    step("modules", "static device nodes", lambda: _static_nodes(root))

    # --- udev -------------------------------------------------------------------------
    # udev is not started in stage 1: vigil.boot.udev finds systemd-udevd or eudev and
    # gives the unit the supervisor runs. Until it runs, our own coldplug loads the
    # drivers of the devices already present, so the disks in fstab can appear.
    # ------------------------------------------------------------------------------------

    tab = fstab.Fstab()

    def read_fstab() -> list[str]:
        nonlocal tab
        tab = fstab.load(root)
        return tab.problems

    timeout = _device_timeout(cmdline, config.device_timeout)
    step("fstab", "reading fstab", read_fstab)
    if coldplug == "udev" and _essential_device_absent(tab):
        # /usr or /var on a disk whose driver neither the initramfs nor modules-load.d
        # loaded: stage 1 waits for it, and udev does not run until stage 1 is done
        step("modules", "coldplug for /usr or /var", lambda: _modules(cmdline, [], True, root))
    step("fstab", "remounting /", lambda: fstab.remount_root(tab, timeout))
    step("fstab", "mounting", lambda: fstab.mount_all(tab, timeout))
    step("swap", "swap", lambda: swap.swap_on(tab.swaps, tab.pending_swaps))
    step("system", "Debian's boot-time files", lambda: initscripts.run_all(root))
    step("sysctl", "sysctl", lambda: sysctl.apply(root))
    step("network", "loopback", network.loopback_up)

    zone: str | None = None
    locale_env: dict[str, str] = {}

    def system_settings() -> list[str]:
        nonlocal zone, locale_env
        found = settings.set_hostname(settings.hostname(config, root))
        zone = settings.timezone(config, root)
        found += settings.set_timezone(zone, root)
        locale_env = settings.locale(config, root)
        return found + seed.load(root)

    step("system", "settings", system_settings)
    step("udev", "udev units", lambda: udev_units(config.udev, root))
    step("fstab", "remote-fs unit", lambda: write_units(fstab.remote_fs_unit(tab), root))
    step("fstab", "mount units", lambda: write_units(fstab.mount_units(tab, program()), root))
    return BootResult(problems, settings.environment(zone, locale_env),
                      config.shutdown_timeout, dict(config.actions), steps)


def program() -> list[str]:
    """How a generated unit runs vigil itself: the frozen program, or this interpreter."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "vigil.main"]


def mount_later(target: str) -> int:
    """`vigil --mount TARGET` (a unit of fstab.mount_units)."""
    from vigil.boot import fstab
    return fstab.mount_later(target, _unit_device_timeout())


def swap_later(spec: str) -> int:
    """`vigil --swap SPEC` (a unit of fstab.mount_units)."""
    from vigil.boot import swap
    return swap.swap_later(spec, _unit_device_timeout())


def _unit_device_timeout() -> float:
    """The device timeout from the command line or vigil.toml, as stage 1 has it."""
    from vigil.boot import cmdline, settings
    config, _problems = settings.load_config()
    return _device_timeout(cmdline.read(), config.device_timeout)


def _device_timeout(cmdline: Cmdline, default: float) -> float:
    value = cmdline.get("vigil.device_timeout")
    try:
        return float(value) if value else default
    except ValueError:
        logs.warn(f"vigil.device_timeout={value} is not a number")
        return default


def _modules(cmdline: Cmdline, extra: list[str], coldplug: bool, root: str) -> list[str]:
    """Load what the command line, vigil.toml's [boot] modules, /etc/modules and
    modules-load.d ask for, in that order; then coldplug."""
    from vigil.boot import modules
    moddir = modules.modules_dir(root)
    if not os.path.isdir(moddir):
        logs.say(f"no {moddir}: a kernel without modules, nothing to load")
        return []
    db, problems = modules.load_db(moddir, root, cmdline.values)
    for p in problems:
        logs.warn(p)
    loaded = modules.loaded_modules()
    wanted = modules.wanted_modules(root, cmdline.values)
    from_cmdline = len(modules.cmdline_modules(cmdline.values))
    wanted[from_cmdline:from_cmdline] = [(name, "") for name in extra]
    problems += modules.load_wanted(db, moddir, wanted, loaded)
    if coldplug:
        modules.coldplug(db, moddir, loaded)
    return problems


def _static_nodes(root: str) -> list[str]:
    from vigil.boot import modules
    return modules.static_nodes(modules.modules_dir(root))


def _coldplug_by(cmdline: Cmdline, config, root: str) -> str:
    """Who loads the drivers of the devices already there: "vigil" (its own coldplug in
    stage 1), "udev" (its trigger unit replays the devices' events, as under systemd, so
    stage 1 does not do it twice: reading modules.alias alone takes seconds under
    emulation) or "off". vigil.coldplug=0/1 on the command line decides; else vigil.toml's
    [boot] coldplug, left to udev when there is one and it will run (not in rescue mode,
    where only the units marked rescue start)."""
    said = cmdline.get("vigil.coldplug")
    if said in ("0", "no", "false") or (said is None and not config.coldplug):
        return "off"
    if said in ("1", "yes", "true") or rescue_mode(cmdline, []):
        return "vigil"
    from vigil.boot import udev
    return "vigil" if udev.find(root, config.udev) is None else "udev"


def _essential_device_absent(tab) -> bool:
    from vigil.boot import fstab
    return any(fstab.essential(e.target) and e.target != "/" and not e.noauto
               and fstab.needs_device(e) and fstab.find_device(e.spec) is None
               for e in tab.mounts)


def udev_units(configured: str | None, root: str = "/") -> list[str]:
    """udevd and udev-trigger into run/vigil/units, for the udev vigil.toml names ("": none)
    or the first one found in the usual places."""
    from vigil.boot import udev
    found = udev.find(root, configured)
    if found is None:
        if configured == "":
            logs.say("vigil.toml: no udev; devtmpfs and vigil's own coldplug only")
            return []
        if configured:
            return problem(f"vigil.toml [system] udev = {configured!r}: not an executable")
        logs.warn("no udev found: devtmpfs and vigil's own coldplug only")
        return []
    return write_units(udev.units(*found, root=root), root)


def write_units(units: dict[str, str], root: str = "/") -> list[str]:
    """Unit name -> TOML text, written to run/vigil/units; returns the problems."""
    units_dir = os.path.join(root, RUNTIME_UNITS.lstrip("/"))
    try:
        os.makedirs(units_dir, exist_ok=True)
        for name, text in units.items():
            with open(os.path.join(units_dir, name + ".toml"), "w") as f:
                f.write(text)
    except OSError as e:
        return problem(f"cannot write {', '.join(units)} to {units_dir}: {e.strerror}")
    return []



VIRTUAL_TERMINALS = 6   # Debian's inittab: a getty on tty1 to tty6


def gettys(cmd: Cmdline, has_vts: bool) -> list[str]:
    """The getty units to start: one on each console= of the command line, then (on a
    machine with virtual terminals) tty1 to tty6, each once. Pure."""
    names = [f"getty@{tty}" for tty, _baud in cmd.consoles()]
    if has_vts:
        names += [f"getty@tty{n}" for n in range(1, VIRTUAL_TERMINALS + 1)
                  if f"getty@tty{n}" not in names]
    return names


def rescue_mode(cmd: Cmdline, init_args: list[str]) -> bool:
    """single, rescue, S or 1 on the kernel command line (or passed to init), as sysvinit."""
    words = set(init_args) | set(cmd.init_args) | set(cmd.values)
    return bool(words & {"single", "rescue", "S", "s", "1", "-s", "emergency"})


def rescue_units() -> dict[str, bool]:
    """Unit name -> whether it is marked rescue = true (parsed in a child)."""
    from vigil.unit import UNIT_DIRS, Catalog
    return {n: u.rescue for n, u in Catalog(UNIT_DIRS).units.items()}
