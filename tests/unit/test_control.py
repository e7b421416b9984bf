"""The control protocol's framing (pure), and hostile requests."""

import json

import pytest

from vigil.control import MAX_REQUEST, RequestError, format_reply, parse_request
from vigil.protocol import format_request


def test_round_trip():
    assert parse_request(format_request("status", ["a", "b"])) == ("status", ["a", "b"])
    assert format_request("list", []) == b"1 list\n"


@pytest.mark.parametrize("line, what", [
    (b"", "expected"),
    (b"1\n", "expected"),
    (b"status a\n", "unsupported protocol version"),
    (b"2 status\n", "unsupported protocol version"),
    (b"\xff\xfe status\n", "not UTF-8"),
    (b"1 " + b"x" * MAX_REQUEST, "longer than"),
])
def test_bad_requests_are_usage_errors(line, what):
    with pytest.raises(RequestError) as e:
        parse_request(line)
    assert what in str(e.value) and e.value.code == 2


def test_replies_are_one_json_line():
    ok = format_reply(True, [{"name": "a"}])
    err = format_reply(False, error="no such unit: x", code=4)
    for reply in (ok, err):
        assert reply.endswith(b"\n") and reply.count(b"\n") == 1
    assert json.loads(err) == {"ok": False, "error": "no such unit: x", "code": 4}
    assert json.loads(ok)["result"] == [{"name": "a"}]


def test_the_client_decodes_replies_as_json_does():
    import json

    from vigil import client
    for reply in ('{"ok":true,"result":[{"name":"a\\u00e9","pid":null,"since":1.5}]}',
                  '  {"ok":false,"error":"x","code":4}\n', '[1, -2.5e3, true, "\\n"]'):
        assert client.loads(reply) == json.loads(reply)
    for bad in ("", "{", '{"ok": true} trailing', "nope"):
        try:
            client.loads(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_the_client_imports_no_heavy_module():
    import os
    import subprocess
    import sys

    import vigil
    package_parent = os.path.dirname(os.path.dirname(vigil.__file__))
    code = (f"import sys; sys.path.insert(0, {package_parent!r}); import vigil.ctl; "
            "print(sorted(m for m in ('json', 're', 'socket', 'enum', 'selectors') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]", out
