"""vigilctl analyze against vigil as PID 1 of a namespace, and the bash completion of
vigilctl asking that vigil for its units."""

import json
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(?:\s*└─)?(\S+) @(\d+min \S+|\S+)(?: \+(.+))?$")


def seconds(text: str) -> float:
    """1.234s, 56ms, 2min 3.5s, as vigilctl prints them, back to seconds."""
    total = 0.0
    for part in text.split():
        if part.endswith("ms"):
            total += float(part[:-2]) / 1000
        elif part.endswith("min"):
            total += 60 * float(part[:-3])
        else:
            total += float(part.rstrip("s"))
    return total


def chain_units(vigil):
    vigil.unit("a", """[service]
type = "oneshot"
exec = ["/bin/sleep", "0.4"]
""")
    vigil.unit("b", """[unit]
requires = ["a"]
[service]
type = "oneshot"
exec = ["/bin/sleep", "0.3"]
""")
    vigil.unit("c", """[unit]
requires = ["b"]
[service]
exec = ["/bin/sleep", "1000"]
""")
    vigil.unit("other", """[service]
exec = ["/bin/sleep", "1000"]
""")


def test_critical_chain_of_a_chain_with_known_delays(vigil):
    chain_units(vigil)
    vigil.start()
    vigil.wait_state("c", "running")
    r = vigil.ctl("--no-pager", "analyze", "critical-chain", "c", check=True)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("The time when a unit became ready is printed after")
    found = [LINE.match(line).groups() for line in lines[3:]]
    assert [name for name, _at, _took in found] == ["c", "b", "a"], r.stdout
    at = {name: seconds(at) for name, at, _took in found}
    took = {name: seconds(took) for name, _at, took in found if took}
    assert took["a"] >= 0.4 and took["b"] >= 0.3          # the sleeps of the oneshots
    # each figure is printed rounded to the millisecond (0.5 ms off at most, three of them)
    slack = 0.0015 + 1e-9
    assert at["b"] >= at["a"] + took["a"] - slack and at["c"] >= at["b"] + took["b"] - slack
    assert re.match(r"^  └─a @", lines[5]), r.stdout
    # without a unit: the one that became ready last (c or other, whichever came later)
    default = vigil.ctl("--no-pager", "analyze", "critical-chain", check=True).stdout
    assert LINE.match(default.splitlines()[3]).group(1) in ("c", "other")
    # --json: the same chain, with depths
    data = json.loads(vigil.ctl("--json", "analyze", "critical-chain", "c", check=True).stdout)
    assert [(d["name"], d["depth"]) for d in data] == [("c", 0), ("b", 1), ("a", 2)]
    assert vigil.ctl("analyze", "critical-chain", "nope").returncode == 4


def test_blame_and_plot(vigil):
    chain_units(vigil)
    vigil.start()
    vigil.wait_state("c", "running")
    blame = vigil.ctl("--no-pager", "analyze", "blame", check=True).stdout.split("\n")
    names = [line.split()[-1] for line in blame if line]
    assert names[:2] == ["a", "b"] and set(names) == {"a", "b", "c", "other"}
    rows = json.loads(vigil.ctl("--json", "analyze", "blame", check=True).stdout)
    assert rows[0]["name"] == "a" and rows[0]["took"] >= 0.4
    svg = vigil.ctl("analyze", "plot", check=True).stdout
    assert svg.startswith("<svg") and svg.count('class="bar"') == 4   # no boot steps here


def complete(vigil, *words: str) -> list[str]:
    """What bash offers for the last word, with vigilctl's completion loaded."""
    script = (f"source {REPO / 'pkg' / 'vigilctl.bash'}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); "
              f"COMP_CWORD={len(words) - 1}; _vigilctl; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    env = {**os.environ, "VIGIL_SOCKET": vigil.sock,
           "PATH": f"{Path(os.environ.get('VIRTUAL_ENV', REPO / '.venv')) / 'bin'}:"
                   f"{Path(__import__('sys').executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                         env=env, check=True).stdout
    return sorted(w for w in out.split("\n") if w)


def test_bash_completion_asks_the_running_vigil(vigil):
    chain_units(vigil)
    vigil.start()
    vigil.wait_state("c", "running")
    assert complete(vigil, "vigilctl", "ana") == ["analyze"]
    assert complete(vigil, "vigilctl", "--no-pager", "restart", "") == ["a", "b", "c", "other"]
    assert complete(vigil, "vigilctl", "logs", "o") == ["other"]
    assert complete(vigil, "vigilctl", "analyze", "cr") == ["critical-chain"]
    assert complete(vigil, "vigilctl", "analyze", "critical-chain", "") == \
        ["a", "b", "c", "other"]
