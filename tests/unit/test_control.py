"""The control protocol's framing (pure), and hostile requests."""

import json

import pytest

from vigil.control import MAX_REQUEST, RequestError, format_reply, format_request, parse_request


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
