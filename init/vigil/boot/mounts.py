"""The kernel's tables of mounts (/proc/self/mounts) and swaps (/proc/swaps), and the octal
escapes they and fstab use.

Pure and light: stage 1, the initramfs stage and stage 3 all read the tables through this,
without importing the fstab machinery (nor dataclasses) into PID 1.
"""

from vigil.files import read_text


def unescape(field_text: str) -> str:
    """Space, tab, newline, backslash (any byte) are written as \\ooo octal."""
    out, i = [], 0
    while i < len(field_text):
        chunk = field_text[i + 1:i + 4]
        if field_text[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


def parse_mounts(text: str) -> dict[str, tuple[str, str, str]]:
    """/proc/self/mounts -> target -> (source, type, options); the last mount wins."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 4:
            out[unescape(f[1])] = (unescape(f[0]), f[2], f[3])
    return out


def current() -> dict[str, tuple[str, str, str]]:
    return parse_mounts(read_text("/proc/self/mounts"))


def block_filesystems(proc_filesystems: str) -> list[str]:
    """The types the kernel can mount from a device (lines without `nodev`), in its order."""
    out = []
    for line in proc_filesystems.splitlines():
        fields = line.split()
        if len(fields) == 1:
            out.append(fields[0])
    return out


def active_swaps(swaps_text: str) -> set[str]:
    """Paths listed in /proc/swaps (header line first; spaces written as \\040)."""
    return {unescape(line.split()[0]) for line in swaps_text.splitlines()[1:]
            if line.split()}
