"""Reading the small kernel and configuration files that may well not be there."""

import os


def read_text(path: str, size: int = -1) -> str:
    """The file's text (at most `size` characters), or "" when it cannot be read: a missing
    /etc/hostname or /proc/swaps is an ordinary case, not an error."""
    try:
        with open(path, errors="replace") as f:
            return f.read(size)
    except OSError:
        return ""


def config_files(dirs: tuple[str, ...], suffix: str = ".conf", root: str = "/") -> list[str]:
    """Files ending in suffix across dirs (modprobe.d, modules-load.d, sysctl.d...), sorted
    by name; a name in an earlier dir hides the same name in a later one (kmod's and
    procps' rule)."""
    chosen: dict[str, str] = {}
    for d in dirs:
        full = os.path.join(root, d.lstrip("/"))
        try:
            names = os.listdir(full)
        except OSError:
            continue
        for name in names:
            if name.endswith(suffix) and name not in chosen:
                chosen[name] = os.path.join(full, name)
    return [chosen[name] for name in sorted(chosen)]
