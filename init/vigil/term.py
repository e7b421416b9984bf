"""What vigilctl prints on a terminal: untrusted text escaped, colour only where wanted, and
a pager for long output, as systemctl does.

Unit names, why texts, STATUS= texts, file names and service log lines come from files
and programs vigilctl does not control; printed as they are, an escape sequence in one of
them could rewrite the terminal (move the cursor, change the title, hide lines). escape()
shows every character that is not printable as a Python-style escape (ESC is \\x1b), so
what a person sees is what the text holds.
"""

import os
import sys

PAGER_ENV = "VIGIL_PAGER"
LESS_DEFAULT = "FRXMK"   # systemctl's: quit within one screen, keep colours, no clear


def escape(text: str, keep: str = "") -> str:
    """Every character that is not printable (control characters, bidi and other format
    characters, line and paragraph separators) as \\xNN, \\uNNNN; `keep` lists those
    to leave (a tab in a log line)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch in keep:
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def colour_wanted(stream=None) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (to anything but empty)."""
    stream = stream or sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR") \
        and os.environ.get("TERM") != "dumb"


def paint(text: str, code: str | None, on: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if on and code else text


class Pager:
    """`with Pager(enabled):` sends sys.stdout through $VIGIL_PAGER, $PAGER, less or more
    when stdout is a terminal; otherwise (or with --no-pager, or no pager found) it does
    nothing. LESS defaults to FRXMK, so less exits by itself on output that fits the
    screen and keeps colours."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stdout.isatty()
        self.proc = None
        self.saved = None

    def _command(self) -> list[str] | None:
        import shlex
        import shutil
        for env in (PAGER_ENV, "PAGER"):
            value = os.environ.get(env)
            if value is not None:
                words = shlex.split(value)
                # "" or "cat" means no pager, as systemctl reads them
                return words if words and words != ["cat"] else None
        for name in ("less", "more"):
            if shutil.which(name):
                return [name]
        return None

    def __enter__(self) -> "Pager":
        if not self.enabled:
            return self
        command = self._command()
        if command is None:
            return self
        import subprocess
        env = dict(os.environ)
        env.setdefault("LESS", LESS_DEFAULT)
        env.setdefault("LESSCHARSET", "utf-8")
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, env=env,
                                         text=True, errors="replace")
        except OSError:
            return self
        sys.stdout.flush()
        self.saved, sys.stdout = sys.stdout, self.proc.stdin
        return self

    def __exit__(self, *exc) -> bool:
        if self.proc is None:
            return False
        try:
            sys.stdout.close()
        except BrokenPipeError:
            pass  # the reader quit early: fine
        sys.stdout = self.saved
        while True:
            try:
                self.proc.wait()
                break
            except KeyboardInterrupt:
                continue  # the pager handles ^C; wait for it to end
        return exc[0] is BrokenPipeError
