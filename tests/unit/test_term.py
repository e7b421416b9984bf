"""What vigilctl prints: untrusted text escaped, colour only where wanted, the pager."""

import fcntl
import io
import pty
import struct
import sys
import termios
import tomllib
from pathlib import Path

import pytest

from vigil import term
from vigil.boot import settings

REPO = Path(__file__).resolve().parents[2]


def test_control_characters_are_shown_not_obeyed():
    assert term.escape("plain name-1@tty2") == "plain name-1@tty2"
    assert term.escape("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert term.escape("x\x9by") == "x\\x9by"                 # C1 CSI
    assert term.escape("abc\u202edef") == "abc\\u202edef"     # right-to-left override
    assert term.escape("one\ntwo\r") == "one\\x0atwo\\x0d"
    assert term.escape("col\tcol", keep="\t") == "col\tcol"
    assert term.escape("col\tcol") == "col\\x09col"
    assert term.escape("é ü 日本") == "é ü 日本"


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert term.colour_wanted(Tty()) and not term.colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not term.colour_wanted(Tty())
    assert term.paint("failed", "31", False) == "failed"
    assert term.paint("failed", "31", True) == "\033[31mfailed\033[0m"


def test_pager_command(monkeypatch):
    monkeypatch.setenv("VIGIL_PAGER", "less -S")
    assert term.Pager(True)._command() == ["less", "-S"]
    monkeypatch.setenv("VIGIL_PAGER", "cat")
    assert term.Pager(True)._command() is None
    monkeypatch.delenv("VIGIL_PAGER")
    monkeypatch.setenv("PAGER", "")
    assert term.Pager(True)._command() is None


def test_no_pager_when_stdout_is_not_a_terminal(capsys):
    with term.Pager(True) as pager:
        print("hello")
    assert pager.proc is None and capsys.readouterr().out == "hello\n"


class PtyOut:
    """A terminal of `rows` lines as sys.stdout: a real pty, so the size is the kernel's."""

    def __init__(self, rows: int):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 80, 0, 0))
        self.written = io.StringIO()

    def isatty(self):
        return True

    def fileno(self):
        return self.slave

    def write(self, text):
        return self.written.write(text)

    def flush(self):
        pass


@pytest.mark.parametrize("rows, lines, paged", [(24, 3, False), (5, 10, True), (0, 100, False)])
def test_only_what_does_not_fit_the_screen_is_paged(monkeypatch, tmp_path, rows, lines, paged):
    """A screen's worth or less is printed as it is (busybox's less has no -F and would wait
    for a key); a serial console says its size is 0: never paged there either."""
    seen = tmp_path / "pager-saw"
    monkeypatch.setenv("VIGIL_PAGER", f"sh -c 'cat > {seen}'")
    out = PtyOut(rows)
    monkeypatch.setattr(sys, "stdout", out)
    text = "".join(f"line {i}\n" for i in range(lines))
    with term.Pager(True):
        print(text, end="")
    assert sys.stdout is out
    if paged:
        assert seen.read_text() == text and out.written.getvalue() == ""
    else:
        assert not seen.exists() and out.written.getvalue() == text


def test_the_shipped_vigil_toml_documents_real_settings():
    """Every setting of the commented default, uncommented, is one vigil reads."""
    text = (REPO / "pkg" / "vigil.toml").read_text()
    assert tomllib.loads(text) == {"system": {}, "boot": {}, "shutdown": {}}
    uncommented = "\n".join(line[2:] if line.startswith("# ") and "=" in line else line
                            for line in text.splitlines())
    raw = tomllib.loads(uncommented)
    assert sum(len(v) for v in raw.values()) == len(settings.SCHEMA)
    _config, problems = settings.parse_config(raw)
    assert problems == []
