"""vigil.jsonc writes and reads what json does, and keeps re out of PID 1."""

import json
import math
import os
import subprocess
import sys

import pytest

import vigil
from vigil import jsonc

VALUES = [
    {"ok": True, "result": [{"name": "a\u00e9\u4e2d\U0001f600", "pid": None, "since": 1.5}]},
    {"state": {"units": {}, "fds": [3, 4, 5], "nested": {"deep": [[], {}, [1, [2, [3]]]]}}},
    [0, -1, 2**70, -2.5e-300, 1e100, 0.1, True, False, None, "", "\"\\/\b\f\n\r\t\x00\x1f"],
    "plain", 42, 3.25, None, (1, "tuple"), {1: "int key", 2.5: "float key", None: "null"},
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_writes_what_json_dumps_writes(value):
    assert jsonc.dumps(value) == json.dumps(value)
    compact = (",", ":")
    assert jsonc.dumps(value, separators=compact) == json.dumps(value, separators=compact)


def test_dumps_default_nan_and_errors_as_json():
    odd = {"path": object(), "n": float("nan"), "big": float("inf")}
    assert jsonc.dumps(odd, default=str) == json.dumps(odd, default=str)
    with pytest.raises(TypeError):
        jsonc.dumps({"x": object()})
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError):
        jsonc.dumps(loop)


@pytest.mark.parametrize("value", VALUES)
def test_loads_reads_what_json_loads_reads(value):
    text = json.dumps(value)
    assert jsonc.loads(text) == json.loads(text)
    assert jsonc.loads(text.encode()) == json.loads(text.encode())
    assert jsonc.loads(f" \n{text}\n ") == json.loads(text)


def test_loads_refuses_what_json_refuses():
    assert math.isnan(jsonc.loads("NaN")) and jsonc.loads("-Infinity") == -math.inf
    for bad in ("", " ", "{", '{"a": 1} x', "[1,]", "nope", b"\xff"):
        with pytest.raises(ValueError):
            json.loads(bad)
        with pytest.raises(ValueError):
            jsonc.loads(bad)


def test_pid1_imports_neither_json_nor_re():
    package_parent = os.path.dirname(os.path.dirname(vigil.__file__))
    code = (f"import sys; sys.path.insert(0, {package_parent!r}); import vigil.main; "
            "print(sorted(m for m in ('json', 're') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]", out
