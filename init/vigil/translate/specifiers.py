"""systemd's % specifiers, resolved when a unit file is translated.

What depends on the instance of a template stays a vigil template specifier (%i, %I), so
that one translated template makes every instance; everything else is resolved here. The
result is vigil template text: a literal % is written %% where vigil would read it as a
specifier, so `date +%%s` in a unit file stays `date +%s` for the program.
"""

from dataclasses import dataclass, field

VIGIL_SPECIFIERS = "iInpP%"
KNOWN = "iInNpPfjJtSCLETVhuUgGsHm%"


@dataclass
class Context:
    """What specifiers resolve from: the unit's systemd name and the machine."""
    prefix: str                 # before the @, or the whole name without suffix
    suffix: str                 # "service", "target"
    template: bool = False      # foo@.service: the instance is not known yet
    instance: str = ""          # an instance translated on its own (foo@bar.service)
    user: str = ""              # User= (empty: root)
    passwd: dict = field(default_factory=dict)   # name -> (uid, gid, home, shell)
    groups: dict = field(default_factory=dict)   # gid -> name
    hostname: str = ""
    machine_id: str = ""


def _unescape(text: str) -> str:
    from vigil.unit import unescape
    return unescape(text)


def _literal(value: str):
    return [(value, False)]


def _pieces(ctx: Context, c: str) -> list[tuple[str, bool]] | None:
    """The pieces one specifier gives: (text, is_vigil_specifier)."""
    inst: list[tuple[str, bool]] = [("%i", True)] if ctx.template else _literal(ctx.instance)
    inst_u = [("%I", True)] if ctx.template else _literal(_unescape(ctx.instance))
    at = ctx.template or ctx.instance
    full = _literal(ctx.prefix + "@") + inst if at else _literal(ctx.prefix)
    last = ctx.prefix.rsplit("-", 1)[-1]
    user = ctx.user or "root"
    entry = ctx.passwd.get(user)
    table = {
        "i": inst, "I": inst_u, "N": full, "n": full + _literal("." + ctx.suffix),
        "p": _literal(ctx.prefix), "P": _literal(_unescape(ctx.prefix)),
        "f": _literal("/") + (inst_u if at else _literal(_unescape(ctx.prefix))),
        "j": _literal(last), "J": _literal(_unescape(last)),
        "t": _literal("/run"), "S": _literal("/var/lib"), "C": _literal("/var/cache"),
        "L": _literal("/var/log"), "E": _literal("/etc"), "T": _literal("/tmp"),
        "V": _literal("/var/tmp"), "%": _literal("%"),
        "u": _literal(user) if "%" not in user else [(user, True)],
        "h": _literal("/root" if user == "root" else entry[2]) if (entry or user == "root")
        else None,
        "s": _literal("/bin/sh" if user == "root" else entry[3]) if (entry or user == "root")
        else None,
        "U": _literal("0" if user == "root" else str(entry[0])) if (entry or user == "root")
        else None,
        "G": _literal("0" if user == "root" else str(entry[1])) if (entry or user == "root")
        else None,
        "g": _literal("root" if user == "root" else ctx.groups.get(entry[1], str(entry[1])))
        if (entry or user == "root") else None,
        "H": _literal(ctx.hostname) if ctx.hostname else None,
        "m": _literal(ctx.machine_id) if ctx.machine_id else None,
    }
    return table.get(c)


def resolve(text: str, ctx: Context) -> tuple[str, list[str]]:
    """(vigil text, problems): each problem is a sentence about a specifier left as it is."""
    pieces: list[tuple[str, bool]] = []
    problems: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%":
            pieces.append((c, False))
            i += 1
            continue
        spec = text[i + 1] if i + 1 < len(text) else ""
        got = _pieces(ctx, spec) if spec else None
        if got is None:
            why = ("a lone % at the end" if not spec else
                   f"%{spec}: user {ctx.user!r} is not in the passwd file" if spec in "hsUGg"
                   else f"%{spec}: not known here")
            problems.append(f"{why}: left as it is")
            pieces.append(("%" + spec, False))
            i += 2
            continue
        if spec in "hsuUgG" and ctx.user not in ("", "root"):
            problems.append(f"%{spec}: resolved from User={ctx.user}; systemd itself gives "
                            "root's here (it ignores User= for specifiers)")
        pieces.extend(got)
        i += 2
    return _join(pieces), problems


def _join(pieces: list[tuple[str, bool]]) -> str:
    """Literal text with % escaped wherever vigil would read a specifier."""
    flat = "".join(t for t, _ in pieces)
    out, pos = [], 0
    for text, special in pieces:
        if special:
            out.append(text)
        else:
            for k, ch in enumerate(text):
                following = flat[pos + k + 1:pos + k + 2]
                out.append("%%" if ch == "%" and following and following in VIGIL_SPECIFIERS
                           else ch)
        pos += len(text)
    return "".join(out)


def escape(value):
    """Literal text (or a raw dict of it) made safe from vigil's template specifiers."""
    if isinstance(value, str):
        return _join([(value, False)])
    if isinstance(value, list):
        return [escape(v) for v in value]
    if isinstance(value, dict):
        return {k: escape(v) for k, v in value.items()}
    return value
