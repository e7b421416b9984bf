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
    """`with Pager(enabled):` holds what is printed and, when stdout is a terminal and the
    text is taller than the screen, shows it through $VIGIL_PAGER, $PAGER, less or more;
    otherwise (short output, a screen of unknown size such as a serial console, no
    terminal, --no-pager, no pager found) it prints it as it is. Deciding here rather than
    through less's -F works for every pager: busybox's less and more have no -F, and on a
    console they would wait for a key after three lines of `vigilctl list`."""

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
        if self.enabled:
            import io
            sys.stdout.flush()
            self.saved, sys.stdout = sys.stdout, io.StringIO()
        return self

    def __exit__(self, *exc) -> bool:
        if self.saved is None:
            return False
        text = sys.stdout.getvalue()
        sys.stdout = self.saved
        rows = _rows(self.saved)
        command = self._command() if rows and text.count("\n") >= rows else None
        if command is None or not self._page(command, text):
            sys.stdout.write(text)
            sys.stdout.flush()
        return False

    def _page(self, command: list[str], text: str) -> bool:
        """Show `text` through the pager; False when it could not be started."""
        import subprocess
        env = dict(os.environ)
        env.setdefault("LESS", LESS_DEFAULT)
        env.setdefault("LESSCHARSET", "utf-8")
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, env=env,
                                         text=True, errors="replace")
        except OSError:
            return False
        try:
            self.proc.stdin.write(text)
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # the reader quit early: fine
        while True:
            try:
                self.proc.wait()
                return True
            except KeyboardInterrupt:
                continue  # the pager handles ^C; wait for it to end


def _rows(stream) -> int:
    """The terminal's height, 0 when the terminal does not say (a serial line)."""
    try:
        return os.get_terminal_size(stream.fileno()).lines
    except (OSError, ValueError):
        return 0
