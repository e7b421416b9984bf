"""Stage 1: what only the machine's PID 1 does before it supervises anything."""

from vigil import logs


def toml_string(text: str) -> str:
    """text as a TOML basic string, for the units stage 1 writes (a mount point or a path
    may hold quotes, backslashes or control characters)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def problem(message: str) -> list[str]:
    """A boot step's failure: logged now, and returned as the step's list of problems."""
    logs.error(message)
    return [message]


def problem_table(problems: list[str]) -> dict[str, str]:
    """Problem lines "AREA: text" -> the supervisor's problems dict: the key is the area
    (fstab, modules...), a second problem in the same area gets "fstab#2", and so on."""
    table: dict[str, str] = {}
    for line in problems:
        area, sep, text = line.partition(": ")
        key, text = (area, text) if sep else ("boot", line)
        n, unique = 1, key
        while unique in table:
            n += 1
            unique = f"{key}#{n}"
        table[unique] = text
    return table
