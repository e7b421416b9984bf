"""udev, when the system has one: where its daemon is, and the units that run it.

vigil does not start udev in stage 1; it gives the supervisor two units instead: `udevd`
(systemd-udevd, which says READY=1, or eudev's udevd) and `udev-trigger`, a oneshot after it
that replays the kernel's events for the devices already present and waits for them to be
handled (coldplug: trigger + settle). Until then vigil.boot.modules' own coldplug has loaded
the drivers stage 1 needed.
"""

import os

# Usual places, first found wins: Debian's systemd-udevd (merged /usr or not), then eudev.
DAEMONS = (
    ("/usr/lib/systemd/systemd-udevd", "notify"),
    ("/lib/systemd/systemd-udevd", "notify"),
    ("/usr/sbin/udevd", "simple"),
    ("/sbin/udevd", "simple"),
)
UDEVADM = ("/usr/bin/udevadm", "/bin/udevadm", "/usr/sbin/udevadm", "/sbin/udevadm")


def find(root: str = "/", configured: str | None = None) -> tuple[str, str] | None:
    """(daemon path, unit type) or None. configured is vigil.toml's [system] udev:
    "" means no udev, a path means that program."""
    if configured == "":
        return None
    if configured:
        kind = "notify" if configured.endswith("systemd-udevd") else "simple"
        return (configured, kind) if _executable(root, configured) else None
    for path, kind in DAEMONS:
        if _executable(root, path):
            return path, kind
    return None


def _executable(root: str, path: str) -> bool:
    return os.access(os.path.join(root, path.lstrip("/")), os.X_OK)


def units(daemon: str, kind: str, root: str = "/") -> dict[str, str]:
    """Unit name -> TOML text for udevd and udev-trigger. Pure apart from finding udevadm."""
    udevadm = next((p for p in UDEVADM if _executable(root, p)), "udevadm")
    out = {"udevd": (
        "[unit]\n"
        'description = "device manager (udev)"\n'
        "\n[service]\n"
        f'type = "{kind}"\n'
        f'exec = ["{daemon}"]\n'
        'restart = "always"\n'
        'log = "console"\n'
    )}
    out["udev-trigger"] = (
        "[unit]\n"
        'description = "udev coldplug: replay the events of present devices, then settle"\n'
        'requires = ["udevd"]\n'
        "\n[service]\n"
        'type = "oneshot"\n'
        f'exec = ["/bin/sh", "-c", "{udevadm} trigger --type=subsystems --action=add && '
        f'{udevadm} trigger --type=devices --action=add && {udevadm} settle --timeout=60"]\n'
    )
    return out
