"""systemd's unit file syntax: sections and assignments, word splitting with its quoting and
C escapes, booleans, time spans and sizes. Pure functions; errors are SyntaxProblem or
ValueError saying what is wrong (the caller adds file and line).
"""

from dataclasses import dataclass

LINE_MAX = 1 << 20        # systemd's own limit on one (continued) line
FILE_MAX = 8 << 20
WHITESPACE = " \t\n\r"
COMMENTS = "#;"


class SyntaxProblem(Exception):
    """A file that cannot be read as a unit file at all: where and why."""

    def __init__(self, path: str, line: int, reason: str):
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


@dataclass(frozen=True)
class Assignment:
    section: str
    key: str
    value: str
    path: str
    line: int


def decode(data: bytes, path: str) -> str:
    """A unit file's bytes as text; binary or oversized content is a SyntaxProblem."""
    if len(data) > FILE_MAX:
        raise SyntaxProblem(path, 0, f"larger than {FILE_MAX >> 20} MiB: not a unit file")
    if b"\0" in data:
        line = data[:data.index(b"\0")].count(b"\n") + 1
        raise SyntaxProblem(path, line, "a NUL byte: binary data, not a unit file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise SyntaxProblem(path, line, "not UTF-8 text") from None


def parse(text: str, path: str) -> tuple[list[Assignment], list[tuple[str, int, str]]]:
    """Sections and KEY=VALUE lines, as systemd reads them: `#` and `;` comments, a trailing
    backslash continues the line (it becomes a space; comment lines inside are skipped).
    Returns the assignments and notes for lines it ignored."""
    out: list[Assignment] = []
    notes: list[tuple[str, int, str]] = []
    section = ""
    pending: list[str] = []     # the pieces of a continued line (joined once: no n^2)
    size, start = 0, 0
    lines = text.split("\n")
    for number, raw in enumerate(lines, 1):
        raw = raw.rstrip("\r")
        if pending and raw.lstrip(WHITESPACE)[:1] in tuple(COMMENTS):
            continue
        if not pending:
            start, size = number, 0
        size += len(raw)
        if size > LINE_MAX:
            raise SyntaxProblem(path, start, f"a line longer than {LINE_MAX} bytes")
        if _continues(raw):
            pending.append(raw[:-1] + " ")
            if number < len(lines):
                continue
            raw = ""   # at the end of the file: used as it is, as systemd does
        line = "".join(pending) + raw if pending else raw
        pending = []
        stripped = line.strip(WHITESPACE)
        if not stripped or stripped[0] in COMMENTS:
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]") or len(stripped) < 3:
                raise SyntaxProblem(path, start, f"invalid section header {stripped[:60]!r}")
            section = stripped[1:-1]
            continue
        key, eq, value = stripped.partition("=")
        if not eq:
            notes.append((path, start, f"{stripped[:60]!r}: not an assignment (no '='), "
                          "ignored"))
            continue
        if not section:
            notes.append((path, start, f"{key.strip()}=: outside of any section, ignored"))
            continue
        out.append(Assignment(section, key.strip(WHITESPACE), value.strip(WHITESPACE),
                              path, start))
    return out, notes


def _continues(line: str) -> bool:
    """Ends with a backslash that is not itself escaped."""
    count = len(line) - len(line.rstrip("\\"))
    return count % 2 == 1


# --- words ------------------------------------------------------------------------------
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", "\\": "\\", '"': '"', "'": "'", "s": " "}


def _unescape_one(text: str, i: int) -> tuple[str, int]:
    """The C escape starting after the backslash at text[i]; (character, next index)."""
    c = text[i] if i < len(text) else ""
    if c in _SIMPLE_ESCAPES and c:
        return _SIMPLE_ESCAPES[c], i + 1
    digits = {"x": (2, 16), "u": (4, 16), "U": (8, 16)}.get(c)
    if digits:
        count, base = digits
        chunk = text[i + 1:i + 1 + count]
        if len(chunk) == count and all(ch in "0123456789abcdefABCDEF" for ch in chunk):
            code = int(chunk, base)
            if code and code <= 0x10FFFF:
                return chr(code), i + 1 + count
    elif c and c in "01234567":
        chunk = text[i:i + 3]
        if len(chunk) == 3 and all(ch in "01234567" for ch in chunk) and int(chunk, 8):
            return chr(int(chunk, 8)), i + 3
    raise ValueError(f"invalid escape sequence '\\{c}'" if c else "a trailing backslash")


def next_word(text: str, i: int) -> tuple[str | None, int]:
    """systemd's extract_first_word with UNQUOTE and CUNESCAPE: the next word from text[i:]
    and where the rest begins; None when only whitespace is left. Quotes may open anywhere
    in a word; C escapes work inside and outside quotes."""
    n = len(text)
    while i < n and text[i] in WHITESPACE:
        i += 1
    if i >= n:
        return None, i
    word: list[str] = []
    quote = ""
    while i < n:
        c = text[i]
        if c == "\\":
            ch, i = _unescape_one(text, i + 1)
            word.append(ch)
            continue
        if quote:
            if c == quote:
                quote = ""
            else:
                word.append(c)
        elif c in "'\"":
            quote = c
        elif c in WHITESPACE:
            break
        else:
            word.append(c)
        i += 1
    if quote:
        raise ValueError("unbalanced quoting (a quote is not closed)")
    return "".join(word), i


def split(text: str) -> list[str]:
    words, i = [], 0
    while True:
        word, i = next_word(text, i)
        if word is None:
            return words
        words.append(word)


# --- values -----------------------------------------------------------------------------
def boolean(value: str) -> bool:
    v = value.lower()
    if v in ("1", "yes", "y", "true", "t", "on"):
        return True
    if v in ("0", "no", "n", "false", "f", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (yes/no, true/false, on/off, 1/0)")


_TIME_UNITS = {
    "usec": 1e-6, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6,
    "msec": 1e-3, "ms": 1e-3,
    "seconds": 1, "second": 1, "sec": 1, "s": 1, "": 1,
    "minutes": 60, "minute": 60, "min": 60, "m": 60,
    "hours": 3600, "hour": 3600, "hr": 3600, "h": 3600,
    "days": 86400, "day": 86400, "d": 86400,
    "weeks": 604800, "week": 604800, "w": 604800,
    "months": 2629800, "month": 2629800, "M": 2629800,
    "years": 31557600, "year": 31557600, "y": 31557600,
}
INFINITY = float("inf")


def timespan(value: str, default_unit: str = "s") -> float:
    """systemd.time(7) spans: "90", "5min 20s", "1h30m", "500ms", "infinity" -> seconds."""
    v = value.strip()
    if v == "infinity":
        return INFINITY
    if not v:
        raise ValueError("an empty time span")
    total, i, n = 0.0, 0, len(v)
    while i < n:
        while i < n and v[i] in WHITESPACE:
            i += 1
        j = i
        while j < n and (v[j].isdigit() or v[j] == "."):
            j += 1
        number = v[i:j]
        k = j
        while k < n and v[k] in WHITESPACE:
            k += 1
        m = k
        while m < n and v[m].isalpha() or (m < n and v[m] in "\u00b5\u03bc"):
            m += 1
        unit = v[k:m]
        if not number or number.count(".") > 1 or number == "." or unit not in _TIME_UNITS:
            raise ValueError(f"{value!r} is not a time span (like 90, 5min 20s, 500ms, "
                             "infinity)")
        scale = _TIME_UNITS[unit] if unit else _TIME_UNITS[default_unit]
        total += float(number) * scale
        i = m
    return total


_SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
               "P": 1 << 50, "E": 1 << 60}


def size(value: str) -> int:
    """A size with systemd's base-1024 suffixes: 64M, 1G, 512K, 4096."""
    v = value.strip()
    unit = v[-1:] if v[-1:].isalpha() else ""
    number = v[:len(v) - len(unit)].strip()
    if unit.upper() not in _SIZE_UNITS or not number.isdigit():
        raise ValueError(f"{value!r} is not a size (like 4096, 512K, 64M, 1G)")
    return int(number) * _SIZE_UNITS[unit.upper()]


# --- command lines ----------------------------------------------------------------------
@dataclass
class CommandLine:
    """One command of an Exec*= line, its prefixes parsed as systemd parses them."""
    words: list[str]            # the program first; argv0 (the @ prefix) is not in here
    ignore_failure: bool = False
    privileged: bool = False    # + or !
    ambient: bool = False       # !!: credentials applied where the kernel has ambient caps
    argv0: str = ""
    expand: bool = True


def command_lines(text: str) -> list[CommandLine]:
    """An Exec*= value: one or more commands separated by a lone `;` (`\\;` is a literal
    `;` word). ValueError on bad quoting or escapes, a missing program, bad prefixes."""
    out: list[CommandLine] = []
    i, n = 0, len(text)
    while True:
        words: list[str] = []
        while True:
            while i < n and text[i] in WHITESPACE:
                i += 1
            if i >= n:
                break
            if text[i] == ";" and (i + 1 == n or text[i + 1] in WHITESPACE):
                i += 1
                break
            if text.startswith("\\;", i) and (i + 2 == n or text[i + 2] in WHITESPACE):
                words.append(";")
                i += 2
                continue
            word, i = next_word(text, i)
            words.append(word)
        if words:
            out.append(_prefixes(words))
        if i >= n:
            return out


def _prefixes(words: list[str]) -> CommandLine:
    first = words[0]
    cmd = CommandLine([])
    seen = ""
    while first[:1] in ("-", "@", ":", "+", "!"):
        c = first[0]
        if c == "!" and seen.endswith("!") and not cmd.ambient:
            cmd.ambient, cmd.privileged = True, False
        elif c in seen or (c in "+!" and ("+" in seen or "!" in seen)):
            raise ValueError(f"prefix {c!r} is not allowed here in {words[0]!r}")
        elif c == "-":
            cmd.ignore_failure = True
        elif c == "@":
            cmd.argv0 = "@"
        elif c == ":":
            cmd.expand = False
        else:
            cmd.privileged = True
        seen += c
        first = first[1:]
    if not first:
        raise ValueError(f"no program in {words[0]!r}")
    rest = words[1:]
    if cmd.argv0:
        if not rest:
            raise ValueError("the @ prefix needs a second word (the program's argv[0])")
        cmd.argv0, rest = rest[0], rest[1:]
    cmd.words = [first, *rest]
    return cmd
