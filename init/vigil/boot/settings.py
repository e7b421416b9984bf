"""System settings at boot: hostname, timezone, locale, and vigil.toml.

Debian's own files are the default (/etc/hostname, /etc/timezone or the /etc/localtime link,
/etc/default/locale, /etc/adjtime); the optional /etc/vigil/vigil.toml overrides them:

    [system]
    hostname = "box"                 # else /etc/hostname
    timezone = "Europe/Paris"        # else /etc/timezone, else the /etc/localtime link
    locale = "en_GB.UTF-8"           # LANG; or a table: { LANG = "...", LC_TIME = "..." }
    udev = "/lib/systemd/systemd-udevd"   # "" for no udev
    [boot]
    modules = ["loop"]               # loaded with the command line's modules-load=
    coldplug = true                  # drivers of devices already present (no udev)
    device_timeout = 30              # seconds to wait for an fstab device
    [shutdown]
    timeout = 120                    # stage 3 goes on after this, whatever is still stopping
    sigterm = "poweroff"             # what SIGTERM to PID 1 does: poweroff|reboot|halt|ignore
    ctrl_alt_del = "reboot"          # SIGINT from the kernel
    power_failure = "poweroff"       # SIGPWR

Unknown keys are errors that name the key; the keys that are valid still count.
The timezone and locale come back as environment variables for services (TZ, LANG, LC_*).
"""

import os
from dataclasses import dataclass, field

from vigil import linux, logs
from vigil.boot import problem
from vigil.files import read_text

CONFIG = "etc/vigil/vigil.toml"
LOCALE_KEYS = {"LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME",
               "LC_COLLATE", "LC_MONETARY", "LC_MESSAGES", "LC_PAPER", "LC_NAME",
               "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION"}


@dataclass
class Config:
    hostname: str | None = None
    timezone: str | None = None
    locale: dict[str, str] = field(default_factory=dict)
    udev: str | None = None          # None: look in the usual places; "": none
    modules: list[str] = field(default_factory=list)
    coldplug: bool = True
    device_timeout: float = 30.0
    shutdown_timeout: float = 120.0
    actions: dict[str, str] = field(default_factory=lambda: {
        "sigterm": "poweroff", "ctrl_alt_del": "reboot", "power_failure": "poweroff"})


ACTIONS = ("poweroff", "reboot", "halt", "ignore")


# --- checks: each takes the TOML value and returns what is stored; TypeError: the wrong
# kind of value (the row says what it must be), ValueError: the right kind, a bad value.

def _string(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError
    return v


def _hostname(v: object) -> str:
    if not valid_hostname(_string(v)):
        raise ValueError(f"{v!r} is not a valid host name")
    return str(v)


def _locale(v: object) -> dict[str, str]:
    if isinstance(v, str):
        return {"LANG": v}
    if not isinstance(v, dict):
        raise TypeError
    bad = [k for k, x in v.items() if k not in LOCALE_KEYS or not isinstance(x, str)]
    if bad:
        raise ValueError(f"not a locale variable (or not a string): {', '.join(map(str, bad))}")
    return dict(v)


def _names(v: object) -> list[str]:
    if not isinstance(v, list):
        raise TypeError
    if not all(isinstance(x, str) for x in v):
        raise ValueError("every module name must be a string")
    return list(v)


def _bool(v: object) -> bool:
    if not isinstance(v, bool):
        raise TypeError
    return v


def _seconds(positive: bool):
    def check(v: object) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError
        if positive and v <= 0:
            raise ValueError("must be positive")
        if v < 0:
            raise ValueError("must not be negative")
        return float(v)
    return check


def _action(v: object) -> str:
    if _string(v) not in ACTIONS:
        raise ValueError(f"expected one of {', '.join(ACTIONS)}, got {v!r}")
    return str(v)


# (section, key) -> (what the value must be, check, where it goes: a Config attribute, or
# "attribute.key" for an item of a dict attribute).
SCHEMA = {
    ("system", "hostname"): ("a string", _hostname, "hostname"),
    ("system", "timezone"): ("a string", _string, "timezone"),
    ("system", "locale"): ("a string or a table", _locale, "locale"),
    ("system", "udev"): ("a path", _string, "udev"),
    ("boot", "modules"): ("a list of names", _names, "modules"),
    ("boot", "coldplug"): ("true or false", _bool, "coldplug"),
    ("boot", "device_timeout"): ("a number of seconds", _seconds(False), "device_timeout"),
    ("shutdown", "timeout"): ("a number of seconds", _seconds(True), "shutdown_timeout"),
    ("shutdown", "sigterm"): ("an action", _action, "actions.sigterm"),
    ("shutdown", "ctrl_alt_del"): ("an action", _action, "actions.ctrl_alt_del"),
    ("shutdown", "power_failure"): ("an action", _action, "actions.power_failure"),
}
SECTIONS = tuple(dict.fromkeys(section for section, _key in SCHEMA))


def parse_config(raw: dict, filename: str = "/" + CONFIG) -> tuple[Config, list[str]]:
    """A vigil.toml already decoded by tomllib -> Config and problems. Pure."""
    config, problems = Config(), []
    for section, values in raw.items():
        if section not in SECTIONS or not isinstance(values, dict):
            problems.append(f"{filename}: unknown section [{section}]")
            continue
        for key, value in values.items():
            row = SCHEMA.get((section, key))
            if row is None:
                problems.append(f"{filename}: [{section}] unknown key {key!r}")
                continue
            what, check, where = row
            try:
                stored = check(value)
            except TypeError:
                problems.append(f"{filename}: [{section}] {key} must be {what}")
                continue
            except ValueError as e:
                problems.append(f"{filename}: [{section}] {key}: {e}")
                continue
            attr, _, item = where.partition(".")
            if item:
                getattr(config, attr)[item] = stored
            else:
                setattr(config, attr, stored)
    return config, problems


def load_config(root: str = "/") -> tuple[Config, list[str]]:
    """Read vigil.toml if there is one (tomllib is only imported then)."""
    path = os.path.join(root, CONFIG)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return Config(), []
    except OSError as e:
        return Config(), [f"{path}: {e.strerror}"]
    import tomllib
    try:
        raw = tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        return Config(), [f"{path}: {e}"]
    return parse_config(raw, path)


# --- Debian's files, parsed -----------------------------------------------------------

def valid_hostname(name: str) -> bool:
    labels = name.split(".")
    return 0 < len(name) <= 64 and all(
        label and not label.startswith("-") and all(c.isascii() and (c.isalnum() or c == "-")
                                                    for c in label) for label in labels)


def parse_hostname(text: str) -> str | None:
    """/etc/hostname: the first line that is not a comment."""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    return None


def parse_timezone(text: str) -> str | None:
    """/etc/timezone: one zone name."""
    return parse_hostname(text)


def zone_from_link(target: str) -> str | None:
    """The /etc/localtime link target -> the zone name: ../usr/share/zoneinfo/Europe/Paris."""
    _, sep, name = target.partition("zoneinfo/")
    if not sep or not name:
        return None
    for prefix in ("posix/", "right/"):
        name = name.removeprefix(prefix)
    return name


def parse_env_file(text: str, keys: set[str] | None = None) -> dict[str, str]:
    """KEY=value lines (/etc/default/locale, /etc/locale.conf), only `keys` if given."""
    from vigil import envfile
    found = envfile.parse(text)
    return found if keys is None else {k: v for k, v in found.items() if k in keys}


def rtc_is_local(adjtime_text: str) -> bool:
    """/etc/adjtime's third line says whether the hardware clock keeps local time."""
    lines = adjtime_text.splitlines()
    return len(lines) >= 3 and lines[2].strip() == "LOCAL"


def minutes_west(zone: str, root: str = "/", when: float | None = None) -> int | None:
    """The zone's offset from UTC as the kernel counts it (minutes west), now."""
    import datetime
    import time
    import zoneinfo
    if not zone or zone.startswith("/") or ".." in zone.split("/"):
        return None
    try:
        with open(os.path.join(root, "usr/share/zoneinfo", zone), "rb") as f:
            tz = zoneinfo.ZoneInfo.from_file(f, key=zone)
    except (OSError, ValueError):
        return None
    now = datetime.datetime.fromtimestamp(time.time() if when is None else when, tz)
    offset = now.utcoffset()
    return None if offset is None else -int(offset.total_seconds() // 60)


# --- what stage 1 uses ---------------------------------------------------------------


def hostname(config: Config, root: str = "/") -> str | None:
    return config.hostname or parse_hostname(read_text(os.path.join(root, "etc/hostname")))


def timezone(config: Config, root: str = "/") -> str | None:
    if config.timezone:
        return config.timezone
    zone = parse_timezone(read_text(os.path.join(root, "etc/timezone")))
    if zone:
        return zone
    try:
        return zone_from_link(os.readlink(os.path.join(root, "etc/localtime")))
    except OSError:
        return None


def locale(config: Config, root: str = "/") -> dict[str, str]:
    if config.locale:
        return dict(config.locale)
    for path in ("etc/default/locale", "etc/locale.conf"):
        found = parse_env_file(read_text(os.path.join(root, path)), LOCALE_KEYS)
        if found:
            return found
    return {}


def set_hostname(name: str | None) -> list[str]:
    import socket
    if not name:
        return []
    if not valid_hostname(name):
        return problem(f"hostname {name!r} is not valid; not set")
    if socket.gethostname() == name:
        return []
    try:
        socket.sethostname(name)
    except OSError as e:
        return problem(f"hostname {name}: {e.strerror}")
    logs.say(f"hostname {name}")
    return []


def set_timezone(zone: str | None, root: str = "/") -> list[str]:
    """Tell the kernel the zone's offset. With a hardware clock in UTC (the usual case, and
    the default without /etc/adjtime) a first call with 0 stops the kernel from shifting the
    clock; with a local-time hardware clock that shift is exactly what is wanted."""
    if not zone:
        return []
    west = minutes_west(zone, root)
    if west is None:
        return problem(f"timezone {zone}: no such zone in /usr/share/zoneinfo")
    try:
        if not rtc_is_local(read_text(os.path.join(root, "etc/adjtime"))):
            linux.set_kernel_timezone(0)
        linux.set_kernel_timezone(west)
    except OSError as e:
        return problem(f"timezone {zone}: {e.strerror}")
    return []



def environment(zone: str | None, locale_env: dict[str, str]) -> dict[str, str]:
    """Variables every service gets: TZ (saves each program a look at /etc/localtime), locale."""
    env = dict(locale_env)
    if zone:
        env["TZ"] = zone
    return env
