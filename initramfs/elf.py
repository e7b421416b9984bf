"""Find the shared libraries an ELF file needs by reading the ELF itself (no ldd).

We read PT_INTERP and the dynamic section (DT_NEEDED, DT_RPATH, DT_RUNPATH) through the
program headers, which are what the dynamic loader uses too, then search as ld.so does:
RPATH (only without RUNPATH), RUNPATH, then Debian's standard library directories.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29

# Debian's multiarch layout first; the rest for libraries installed the old way.
DEFAULT_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


class NotElf(ValueError):
    pass


@dataclass(frozen=True)
class DynInfo:
    interp: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    elf_class: int  # 1 = 32-bit, 2 = 64-bit: a library must match the program


def is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def read_dynamic(path: str) -> DynInfo:
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise NotElf(path)
    cls, endian = data[4], data[5]
    e = "<" if endian == 1 else ">"
    if cls == 2:
        phoff, phentsize, phnum = (
            struct.unpack_from(e + "Q", data, 0x20)[0],
            *struct.unpack_from(e + "HH", data, 0x36),
        )
        ph_fmt, dyn_fmt = e + "IIQQQQQQ", e + "qQ"
    elif cls == 1:
        phoff, phentsize, phnum = (
            struct.unpack_from(e + "I", data, 0x1C)[0],
            *struct.unpack_from(e + "HH", data, 0x2A),
        )
        ph_fmt, dyn_fmt = e + "IIIIIIII", e + "iI"
    else:
        raise NotElf(f"{path}: unknown ELF class {cls}")

    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    interp: str | None = None
    dynamic: tuple[int, int] | None = None  # (offset, size)
    for i in range(phnum):
        fields = struct.unpack_from(ph_fmt, data, phoff + i * phentsize)
        if cls == 2:
            p_type, _flags, off, vaddr, _paddr, filesz = fields[:6]
        else:
            p_type, off, vaddr, _paddr, filesz = fields[:5]
        if p_type == PT_LOAD:
            loads.append((vaddr, off, filesz))
        elif p_type == PT_INTERP:
            interp = data[off:off + filesz].split(b"\0", 1)[0].decode()
        elif p_type == PT_DYNAMIC:
            dynamic = (off, filesz)
    if dynamic is None:  # static executable
        return DynInfo(interp, (), (), (), cls)

    tags: list[tuple[int, int]] = []
    step = struct.calcsize(dyn_fmt)
    off, size = dynamic
    for pos in range(off, off + size, step):
        tag, val = struct.unpack_from(dyn_fmt, data, pos)
        if tag == DT_NULL:
            break
        tags.append((tag, val))

    # DT_STRTAB holds a virtual address: map it to a file offset through PT_LOAD.
    strtab_addr = next((v for t, v in tags if t == DT_STRTAB), None)
    if strtab_addr is None:
        raise NotElf(f"{path}: dynamic section without DT_STRTAB")
    strtab = _vaddr_to_offset(loads, strtab_addr, path)

    def string(at: int) -> str:
        start = strtab + at
        return data[start:data.index(b"\0", start)].decode()

    needed = tuple(string(v) for t, v in tags if t == DT_NEEDED)
    rpath = tuple(p for t, v in tags if t == DT_RPATH for p in string(v).split(":") if p)
    runpath = tuple(p for t, v in tags if t == DT_RUNPATH for p in string(v).split(":") if p)
    return DynInfo(interp, needed, rpath, runpath, cls)


def _vaddr_to_offset(loads: list[tuple[int, int, int]], addr: int, path: str) -> int:
    for vaddr, off, filesz in loads:
        if vaddr <= addr < vaddr + filesz:
            return addr - vaddr + off
    raise NotElf(f"{path}: address {addr:#x} is in no PT_LOAD segment")


def _expand(dirs: tuple[str, ...], origin: str) -> list[str]:
    return [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in dirs]


def _elf_class(path: str) -> int:
    with open(path, "rb") as f:
        head = f.read(5)
    return head[4] if head[:4] == b"\x7fELF" else 0


def find_library(
    name: str, info: DynInfo, origin: str, extra_dirs: tuple[str, ...] = ()
) -> str | None:
    """Where ld.so would find `name` for an object with `info`, located in `origin`."""
    if "/" in name:
        return name if os.path.exists(name) else None
    dirs: list[str] = []
    if not info.runpath:  # RPATH is ignored when RUNPATH is present
        dirs += _expand(info.rpath, origin)
    dirs += _expand(info.runpath, origin)
    dirs += list(DEFAULT_DIRS) + list(extra_dirs)
    for d in dirs:
        candidate = os.path.join(d, name)
        # Skip a library of the wrong class (e.g. a 32-bit one in /lib), as ld.so does.
        if os.path.isfile(candidate) and _elf_class(candidate) == info.elf_class:
            return candidate
    return None


def resolve(
    paths: list[str], extra_dirs: tuple[str, ...] = ()
) -> tuple[set[str], set[str]]:
    """All libraries (and interpreters) that the ELF files `paths` need, transitively.

    Returns (found host paths, names not found). `extra_dirs` are searched after the
    standard ones: a bundle's own libraries (PyInstaller's _internal/) are loaded by path,
    but its launcher's plain DT_NEEDED entries are found by ld.so in the system dirs only.
    """
    found: set[str] = set()
    missing: set[str] = set()
    todo = list(paths)
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            info = read_dynamic(real)
        except NotElf:
            continue
        if info.interp:
            found.add(info.interp)
            todo.append(info.interp)
        origin = os.path.dirname(os.path.abspath(path))
        for name in info.needed:
            lib = find_library(name, info, origin, extra_dirs)
            if lib is None:
                missing.add(name)
                continue
            found.add(lib)
            todo.append(lib)
    return found, missing
