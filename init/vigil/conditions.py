"""A unit's conditions and assertions on paths, checked when it is about to start.

Each key is a list of (path, negated, triggering) as unit.py reads "[|][!]/path". As systemd
does: every non-triggering entry must hold, and when there are triggering (`|`) entries, at
least one of those must hold. A failed condition means the unit is skipped (not an error);
a failed assertion means it fails.
"""

import os


def file_is_executable(path: str) -> bool:
    """ConditionFileIsExecutable=: a regular file with an execute bit set (for anyone)."""
    return os.path.isfile(path) and os.stat(path).st_mode & 0o111 != 0


CHECKS = {
    "condition_path_exists": os.path.exists,
    "condition_path_is_directory": os.path.isdir,
    "condition_file_not_empty": lambda p: os.path.isfile(p) and os.path.getsize(p) > 0,
    "condition_file_is_executable": file_is_executable,
    "assert_path_exists": os.path.exists,
}
ASSERTIONS = ("assert_path_exists",)


def _text(key: str, path: str, negated: bool, triggering: bool) -> str:
    return f"{key} {'|' if triggering else ''}{'!' if negated else ''}{path}"


def first_failure(unit, keys, root: str | None = None) -> str:
    """The first entry of these keys that does not hold, as text ("" if all hold); root:
    the machine the paths are on (an import root), / when None."""
    triggers: list[str] = []
    triggered = False
    for key in keys:
        check = CHECKS[key]
        for path, negated, triggering in getattr(unit, key):
            holds = check(os.path.join(root, path.lstrip("/")) if root else path) != negated
            if triggering:
                triggers.append(_text(key, path, negated, True))
                triggered = triggered or holds
            elif not holds:
                return _text(key, path, negated, False)
    if triggers and not triggered:
        return "none of " + ", ".join(triggers)
    return ""


def failed_condition(unit, root: str | None = None) -> str:
    return first_failure(unit, [k for k in CHECKS if k not in ASSERTIONS], root)


def failed_assertion(unit) -> str:
    return first_failure(unit, ASSERTIONS)
