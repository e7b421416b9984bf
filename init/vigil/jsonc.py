"""JSON through _json, the C accelerator that the json package itself calls, and nothing
else: PID 1 and the client read and write JSON without importing json, whose decoder and
encoder import re (and the regex compiler with it: about 350 KiB of PID 1's memory, and
under emulation a tenth of the time its imports take). The text is what json.dumps and
json.loads give with their default options; `separators` and `default` as theirs.
"""

import _json


class _Decoding:
    """What _json's scanner reads from its context (json.decoder.JSONDecoder has the same)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(float)  # NaN, Infinity, -Infinity


_scan = _json.make_scanner(_Decoding())


def loads(text: str | bytes):
    """One JSON value (surrounding white space allowed); ValueError if it is not that."""
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8")
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not JSON") from None
    if text[end:].strip(" \t\n\r"):
        raise ValueError("not JSON: extra data after the value")
    return value


def _no_default(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps(obj, separators: tuple[str, str] = (", ", ": "), default=None) -> str:
    """As json.dumps(obj, separators=..., default=...): ASCII, circular references checked,
    NaN and infinities allowed, keys in their order."""
    item, key = separators
    encode = _json.make_encoder({}, default or _no_default, _json.encode_basestring_ascii,
                                None, key, item, False, False, True)
    return "".join(encode(obj, 0))
