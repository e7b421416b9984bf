"""KEY=value files: systemd's EnvironmentFile=, /etc/default/*, /etc/default/locale.

One assignment a line; blank lines and lines starting with # or ; are skipped; an optional
`export `; the value may be in single or double quotes (kept as written inside them); a
backslash at the end of a line continues it. Lines that are not assignments are skipped.
Pure: text in, a dict out (in file order).
"""


def parse(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + lines[i]
        i += 1
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out
