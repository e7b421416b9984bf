"""`vigilctl convert`: an imported unit written as the vigil TOML file that loads to the same
Unit, with what could not be carried over as comments naming file and line.
"""

import os

from vigil.translate import files, initd, inittab, syntax, systemd
from vigil.translate.specifiers import Context, escape
from vigil.unit import DEPENDENCY_KEYS, Catalog


class ConvertError(Exception):
    pass


def toml_text(name: str, raw: dict, notes, origin_path: str, extra: list[str] = ()) -> str:
    import tomli_w
    head = [f"# {name}: converted by vigilctl convert from {origin_path}"]
    head += [f"# {line}" for line in extra]
    if notes:
        head.append("# not carried over, or changed:")
        head += [f"#   {_where(path, line)}: {text}" for path, line, text in notes]
    body = {section: values for section, values in raw.items() if values}
    return "\n".join(head) + "\n\n" + tomli_w.dumps(body)


def _where(path: str, line: int) -> str:
    return f"{path}:{line}" if line else path


def resolved(catalog: Catalog, raw: dict) -> dict:
    """The raw dict with its dependencies naming units, not aliases (the TOML file must not
    rely on the machine's alias links)."""
    unit = dict(raw.get("unit", {}))
    for key in DEPENDENCY_KEYS:
        if key in unit:
            unit[key] = list(dict.fromkeys(catalog.resolve(n) for n in unit[key]))
    return {**raw, "unit": unit}


def units_from(catalog: Catalog, path: str) -> list[str]:
    """The catalog's imported units read from this file."""
    real = os.path.realpath(path)
    return sorted(n for n, u in catalog.units.items() if u.origin != "toml"
                  and u.path and os.path.realpath(u.path) == real)


def standalone(path: str, root: str = "/") -> list[tuple[str, dict, list]]:
    """A file that is no unit of the import root, translated on its own (no drop-ins, no
    links): [(name, raw, notes)]."""
    base = os.path.basename(path)
    try:
        text = syntax.decode(files.read_bytes(path, trusted=False), path)  # only printed
    except OSError as e:
        raise ConvertError(f"{path}: {e.strerror or e}") from None
    except syntax.SyntaxProblem as e:
        raise ConvertError(str(e)) from None
    if base.endswith((".service", ".target")):
        stem, _, suffix = base.rpartition(".")
        prefix, at, instance = stem.partition("@")
        users, groups = files.passwd(root)
        ctx = Context(prefix if at else stem, suffix, template=bool(at) and not instance,
                      instance=instance, passwd=users, groups=groups)
        try:
            t = systemd.translate(base, [(path, text)], ctx)
        except (systemd.TranslateError, syntax.SyntaxProblem) as e:
            raise ConvertError(str(e)) from None
        return [(t.name, t.raw, t.notes)]
    if base == "inittab":
        tab = inittab.parse(text, path)
        return [(u.name, escape(u.raw), u.notes) for u in tab.units]
    facts = initd.Facts(lambda n: None, lambda n: None)
    try:
        t = initd.translate(base, os.path.abspath(path), text, path, facts)
    except initd.NoHeader as e:
        raise ConvertError(f"{path}: not a systemd unit (.service, .target), an inittab or an "
                           f"init.d script with an LSB header: {e}") from None
    return [(t.name, t.raw, t.notes)]


def convert_file(catalog: Catalog, path: str) -> list[tuple[str, str]]:
    """[(name, TOML text)] for the units of one file."""
    names = units_from(catalog, path)
    if names:
        out = []
        for name in names:
            unit = catalog.units[name]
            extra = [f"masked on this machine ({catalog.masks.get(name, '/dev/null')})"] \
                if unit.masked else []
            out.append((name, toml_text(name, resolved(catalog, catalog.sources[name]),
                                        unit.notes, unit.path, extra)))
        return out
    template = next((n for n, t in catalog.templates.items() if t["origin"] != "toml" and
                     os.path.realpath(t["path"]) == os.path.realpath(path)), None)
    if template:
        t = catalog.templates[template]
        return [(template, toml_text(template, resolved(catalog, t["raw"]),
                                     [tuple(n) for n in t["notes"]], t["path"]))]
    skipped = [n for n, (p, _why) in catalog.skipped.items()
               if os.path.realpath(p) == os.path.realpath(path)]
    extra = [f"vigil skips it when importing: {catalog.skipped[skipped[0]][1]}"] \
        if skipped else []
    return [(name, toml_text(name, raw, notes, path, extra))
            for name, raw, notes in standalone(path, catalog.import_root or "/")]


def convert_all(catalog: Catalog, out_dir: str) -> list[str]:
    """Write NAME.toml for every enabled imported unit, never over an existing file.
    Returns the lines to print."""
    lines = []
    os.makedirs(out_dir, exist_ok=True)
    for name, unit in sorted(catalog.units.items()):
        if unit.origin == "toml" or not unit.enabled or name not in catalog.sources:
            continue
        target = os.path.join(out_dir, name + ".toml")
        if os.path.lexists(target):
            lines.append(f"kept {target} (exists)")
            continue
        text = toml_text(name, resolved(catalog, catalog.sources[name]), unit.notes, unit.path)
        try:
            with open(target, "x", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise ConvertError(f"{target}: {e.strerror or e}") from None
        lines.append(f"wrote {target}")
        lines += [f"  {_where(p, n)}: {t}" for p, n, t in unit.notes]
    return lines
