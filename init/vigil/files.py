"""Reading the small kernel and configuration files that may well not be there."""


def read_text(path: str, size: int = -1) -> str:
    """The file's text (at most `size` characters), or "" when it cannot be read: a missing
    /etc/hostname or /proc/swaps is an ordinary case, not an error."""
    try:
        with open(path, errors="replace") as f:
            return f.read(size)
    except OSError:
        return ""
