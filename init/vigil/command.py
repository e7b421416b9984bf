"""One command of a unit (exec, exec_start_pre, exec_stop...): parsed once, carried typed.

A command is written as a string (split as a shell would, no shell is run) or as a list of
strings. Its first word may begin with systemd's prefixes, in any combination:

    -   a failure (non-zero exit) is ignored
    +   runs as root, not as the unit's user/group (systemd's `!` is accepted as the same)
    @   the second word is what the program sees as argv[0]
    :   no $VAR expansion for this command (see the unit's expand_environment)

Command.argv[0] is the program to execute; argv0 is what it sees as its argv[0] ("" means
argv[0] itself). PID 1 imports this module: shlex is imported only to split a string.
"""

PREFIXES = "-+!@:"


class Command:
    __slots__ = ("argv", "ignore_failure", "privileged", "argv0", "expand")

    def __init__(self, argv: tuple[str, ...], ignore_failure: bool = False,
                 privileged: bool = False, argv0: str = "", expand: bool = True):
        self.argv = tuple(argv)
        self.ignore_failure, self.privileged = ignore_failure, privileged
        self.argv0, self.expand = argv0, expand

    def _key(self) -> tuple:
        return (self.argv, self.ignore_failure, self.privileged, self.argv0, self.expand)

    def __eq__(self, other) -> bool:
        return isinstance(other, Command) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Command({self.words()!r})"

    def words(self) -> list[str]:
        """The command as a TOML list, prefixes on the first word (what `convert` writes)."""
        prefix = ("-" if self.ignore_failure else "") + ("+" if self.privileged else "") \
            + ("@" if self.argv0 else "") + ("" if self.expand else ":")
        rest = [self.argv0, *self.argv[1:]] if self.argv0 else list(self.argv[1:])
        return [prefix + self.argv[0], *rest]

    def to_json(self) -> list:
        return [list(self.argv), self.ignore_failure, self.privileged, self.argv0, self.expand]

    @classmethod
    def from_json(cls, data: list) -> "Command":
        argv, ignore_failure, privileged, argv0, expand = data
        return cls(tuple(argv), ignore_failure, privileged, argv0, expand)


def split(value: str) -> list[str]:
    import shlex
    try:
        return shlex.split(value)
    except ValueError as e:
        raise ValueError(f"cannot split command line: {e}") from None


def parse(value) -> Command:
    """A TOML value (string or list of strings) -> Command, or ValueError saying why."""
    words = split(value) if isinstance(value, str) else value
    if not isinstance(words, list) or not all(isinstance(x, str) for x in words):
        raise ValueError("expected a list of strings or a command line string")
    if not words or not words[0]:
        raise ValueError("empty command")
    first, seen = words[0], ""
    while first and first[0] in PREFIXES:
        if first[0] in seen:
            raise ValueError(f"prefix {first[0]!r} given twice in {words[0]!r}")
        if first[0] in "+!" and ("+" in seen or "!" in seen):
            raise ValueError(f"+ and ! mean the same here: give one ({words[0]!r})")
        seen, first = seen + first[0], first[1:]
    if not first:
        raise ValueError(f"{words[0]!r}: no program after the prefixes")
    rest = words[1:]
    argv0 = ""
    if "@" in seen:
        if not rest:
            raise ValueError("the @ prefix needs a second word (the program's argv[0])")
        argv0, rest = rest[0], rest[1:]
    return Command((first, *rest), ignore_failure="-" in seen,
                   privileged="+" in seen or "!" in seen, argv0=argv0, expand=":" not in seen)


def expand(words: list[str], env: dict[str, str]) -> list[str]:
    """$VAR and ${VAR} as systemd expands them in a command: ${VAR} inside a word is its
    value; a word that is only $VAR becomes the value's words (split on white space, none
    if it is empty); $$ is a $. An unset variable is empty."""
    out = []
    for word in words:
        name = word[1:] if word.startswith("$") and not word.startswith("${") else ""
        if name and name.replace("_", "a").isalnum() and not name[0].isdigit():
            out.extend(env.get(name, "").split())
            continue
        out.append(_substitute(word, env))
    return out


def _substitute(word: str, env: dict[str, str]) -> str:
    parts, i = [], 0
    while i < len(word):
        if word.startswith("$$", i):
            parts.append("$")
            i += 2
        elif word.startswith("${", i) and "}" in word[i:]:
            end = word.index("}", i)
            parts.append(env.get(word[i + 2:end], ""))
            i = end + 1
        else:
            parts.append(word[i])
            i += 1
    return "".join(parts)
