"""Stage 1 after the essential mounts: one call brings the machine up to where units can run.

In order: kernel modules (the command line, vigil.toml, /etc/modules, modules-load.d), the
drivers of devices already present (coldplug, unless udev is configured to do it), / remounted
as fstab says, the rest of fstab mounted, swap, then hostname, timezone, locale and the random
seed. Every step skips what is already done and none of them raises: what fails is logged
and comes back as a problem line "AREA: what went wrong" (AREA is config, modules, fstab,
swap or system; `vigil.boot.problem_table` turns the lines into the supervisor's problems dict).

Everything in fstab is mounted here, before the supervisor starts the first unit, so units
need no ordering against mounts.
"""

from collections.abc import Callable

from vigil import logs
from vigil.boot import fstab, modules, seed, settings, swap
from vigil.boot.cmdline import Cmdline


def bring_up(cmdline: Cmdline, root: str = "/") -> tuple[list[str], dict[str, str]]:
    """Returns (problems, environment for services: TZ, LANG, LC_*).

    root is where configuration is read from (/etc, /lib/modules); mounts, swap and the
    kernel settings always apply to the running system.
    """
    problems: list[str] = []
    config = settings.Config()

    def step(area: str, what: str, fn: Callable[[], list[str]]) -> None:
        try:
            found = fn()
        except Exception as e:  # noqa: BLE001 - a bug in one step must not stop the boot
            found = [f"{what}: internal error: {e!r}"]
            logs.error(f"{area}: {found[0]}")
        problems.extend(f"{area}: {p}" for p in found)

    def read_config() -> list[str]:
        nonlocal config
        config, found = settings.load_config(root)
        for p in found:
            logs.error(p)
        return found

    step("config", "vigil.toml", read_config)
    step("modules", "loading modules", lambda: _modules(cmdline, config, root))

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

    timeout = _device_timeout(cmdline, config)
    step("fstab", "reading fstab", read_fstab)
    step("fstab", "remounting /", lambda: fstab.remount_root(tab, timeout))
    step("fstab", "mounting", lambda: fstab.mount_all(tab, timeout))
    step("swap", "swap", lambda: swap.swap_on(tab.swaps, timeout))

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
    return problems, settings.environment(zone, locale_env)


def _device_timeout(cmdline: Cmdline, config: settings.Config) -> float:
    value = cmdline.get("vigil.device_timeout")
    try:
        return float(value) if value else config.device_timeout
    except ValueError:
        logs.warn(f"vigil.device_timeout={value} is not a number")
        return config.device_timeout


def _modules(cmdline: Cmdline, config: settings.Config, root: str) -> list[str]:
    import os
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
    wanted[from_cmdline:from_cmdline] = [(name, "") for name in config.modules]
    problems += modules.load_wanted(db, moddir, wanted, loaded)
    if config.coldplug and cmdline.get("vigil.coldplug") not in ("0", "no", "false"):
        modules.coldplug(db, moddir, loaded)
    return problems
