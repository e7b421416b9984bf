"""Offline checks of what units will run (`vigilctl check`): does each command's program
exist and may it be executed? A program that is missing is an error, unless it is on a
file system that may not be mounted yet (an fstab entry other than /, or a mount unit): then
it is a warning, since it may well be there at boot. A unit whose conditions do not hold on
the machine is not looked at: it would be skipped, not run."""

import os

from vigil.files import read_text
from vigil.spawn import DEFAULT_PATH, find_program

COMMAND_KEYS = ("exec", "exec_start_pre", "exec_start_post", "exec_reload", "exec_stop",
                "exec_stop_post")


def fstab_mount_points(text: str) -> list[str]:
    """The mount points of an fstab other than / (and swap): where a program may appear."""
    points = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not fields[0].startswith("#") and fields[1].startswith("/") \
                and fields[1] != "/" and fields[2] != "swap":
            points.append(os.path.normpath(fields[1]))
    return points


def program_problems(units: dict, mount_points: list[str],
                     root: str | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) for the programs the units run, each naming the unit file and key;
    root: the machine the units are for (an import root), / when None."""
    from vigil.conditions import failed_condition
    errors, warnings = [], []
    for _name, unit in sorted(units.items()):
        if failed_condition(unit, root):
            continue   # skipped at start (quotaon.service without quota: no /sbin/quotaon)
        for key in COMMAND_KEYS:
            value = getattr(unit, key)
            for command in (value,) if key == "exec" else value:
                if command is None:
                    continue
                inside = os.path.join(root or "/", (unit.root_directory or "/").lstrip("/"))
                why = _program_missing(command.argv[0], dict(unit.environment),
                                       None if inside == "/" else inside)
                if not why:
                    continue
                text = f"{unit.path}: service.{key}: {why}"
                later = [p for p in mount_points if command.argv[0].startswith(p + "/")]
                if command.ignore_failure or later:
                    warnings.append(text + (f" (it may be there once {later[0]} is mounted)"
                                            if later else " (its failure is ignored: -)"))
                else:
                    errors.append(text)
    return errors, warnings


def _program_missing(program: str, environment: dict, root: str | None) -> str:
    """Why program cannot be run ("" if it can). A $VAR program is known only at start."""
    if program.startswith("$"):
        return ""
    found = find_program(program, environment.get("PATH", DEFAULT_PATH), root)
    if found is None:
        return f"exec {program}: not found"
    path = os.path.join(root, found.lstrip("/")) if root else found
    if not os.path.exists(path):
        return f"exec {program}: not found"
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return f"exec {program}: not an executable file"
    return ""


def mount_points(import_root: str | None, units: dict) -> list[str]:
    from vigil.unit import mount_point
    root = import_root or "/"
    points = fstab_mount_points(read_text(os.path.join(root, "etc/fstab")))
    return points + [mount_point(n) for n in units if n.endswith(".mount")]
