"""The kernel command line, parsed: pure text in, values out.

Words are separated by spaces; double quotes group a value with spaces in it
(`vigil.x="a b"`). Everything after `--` is for init itself (its arguments).
Unknown options are kept but mean nothing to vigil.
"""


class Cmdline:
    def __init__(self, text: str):
        self.text = text
        self.values: dict[str, list[str]] = {}   # key -> every value given, in order
        self.init_args: list[str] = []
        words = _split(text)
        if "--" in words:
            cut = words.index("--")
            words, self.init_args = words[:cut], words[cut + 1:]
        for word in words:
            key, _, value = word.partition("=")
            self.values.setdefault(key, []).append(value)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value given for key (the kernel's own rule for repeated options)."""
        vals = self.values.get(key)
        return vals[-1] if vals else default

    def has(self, key: str) -> bool:
        return key in self.values

    def consoles(self) -> list[tuple[str, str]]:
        """(tty, baud) for each console= in order, e.g. ("ttyS0", "115200")."""
        out = []
        for value in self.values.get("console", []):
            tty, _, options = value.partition(",")
            tty = tty.removeprefix("/dev/")
            baud = "".join(c for c in options.split("n")[0] if c.isdigit())
            if tty and (tty, baud) not in out:
                out.append((tty, baud))
        return out


def _split(text: str) -> list[str]:
    words, current, quoted, started = [], [], False, False
    for ch in text.strip():
        if ch == '"':
            quoted = not quoted
            started = True
        elif ch.isspace() and not quoted:
            if started:
                words.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
            started = True
    if started:
        words.append("".join(current))
    return words


def read(path: str = "/proc/cmdline") -> Cmdline:
    try:
        with open(path) as f:
            return Cmdline(f.read())
    except OSError:
        return Cmdline("")
