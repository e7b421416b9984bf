"""The frozen clients answer as the venv one does, verb by verb, against one vigil; the power
verbs work from them.

Three clients: the venv's vigilctl, the frozen tree's client program (build/frozen/vigil/
vigilctl) and the frozen multi-call program under the name vigilctl. Needs `make build`.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import VIGILCTL

pytestmark = pytest.mark.ns

FROZEN = Path(os.environ.get("VIGIL_FROZEN",
                             Path(__file__).resolve().parents[2] / "build" / "frozen" / "vigil"))
NOBODY = 65534


@pytest.fixture
def clients(vigil):
    if not (FROZEN / "vigilctl").is_file():
        pytest.skip(f"{FROZEN}/vigilctl is not built (make build)")
    # Outside pytest's private tmp, so that another user can run them too.
    bins = Path(tempfile.mkdtemp(prefix="vigil-clients-"))
    os.chmod(bins, 0o755)
    (bins / "multicall").mkdir()
    (bins / "multicall" / "vigilctl").symlink_to(FROZEN / "vigil")
    yield {"venv": Path(VIGILCTL), "frozen": FROZEN / "vigilctl",
           "frozen multi-call": bins / "multicall" / "vigilctl"}
    shutil.rmtree(bins)


def name_as(clients: dict, label: str, name: str) -> Path:
    """The client `label` under a sysvinit name (a symlink, as make install makes)."""
    target = os.path.realpath(clients[label])
    link = clients["frozen multi-call"].parent.parent / label.replace(" ", "-") / name
    link.parent.mkdir(exist_ok=True)
    if not link.exists():
        link.symlink_to(target)
    return link


TIMES = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "DATE"),
    (re.compile(r"\b\d+(s|min|h\d\d|d) ago"), "AGO"),
    (re.compile(r"[ \t]+"), " "),  # column widths follow the times' widths
]


def normal(text: str) -> str:
    for rx, to in TIMES:
        text = rx.sub(to, text)
    return text


def run(argv: list, user: int | None = None, env: dict | None = None) -> tuple:
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=30,
                       user=user, env=env)
    return r.returncode, normal(r.stdout), normal(r.stderr)


def same_answers(clients: dict, args: list, user: int | None = None,
                 env: dict | None = None) -> tuple:
    """Each client's (exit status, stdout, stderr) for one command line; all equal."""
    answers = {label: run([path, *args], user, env) for label, path in clients.items()}
    first = answers["venv"]
    for label, answer in answers.items():
        assert answer == first, f"vigilctl {' '.join(args)}: {label} differs from venv:\n" \
                                f"{answer}\n!=\n{first}"
    return first


def test_every_reading_verb_answers_alike(vigil, clients, tmp_path):
    vigil.unit("web", '[unit]\ndescription = "a web server"\n'
                      '[service]\nexec = ["/bin/sh", "-c", "echo up; exec sleep 1000"]\n')
    vigil.unit("db", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("job", '[service]\ntype = "oneshot"\nexec = ["/bin/true"]\n')
    vigil.unit("broken", '[service]\nexec = ["/bin/false"]\nrestart = "never"\n')
    vigil.unit("off", '[unit]\nenabled = false\n[service]\nexec = ["/bin/sleep", "1"]\n')
    vigil.start()
    vigil.wait_state("web", "running")
    vigil.wait_state("job", "done")
    vigil.wait_state("broken", "failed")
    vigil.wait_for(lambda: "up" in (vigil.logs / "web.log").read_text()
                   if (vigil.logs / "web.log").exists() else False, what="web's log")
    sock = ["--socket", vigil.sock]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.toml").write_text('[service]\nexek = ["/bin/true"]\n')
    service = tmp_path / "old.service"
    service.write_text("[Service]\nExecStart=/bin/sleep 5\nRestart=always\n")
    expect = {
        ("list",): 0, ("status",): 0, ("status", "web"): 0, ("status", "web", "db"): 0,
        ("status", "job"): 3, ("status", "broken"): 3, ("status", "off"): 3,
        ("status", "nosuch"): 4, ("--json", "list"): 0, ("--json", "status", "web"): 0,
        ("--json", "status", "nosuch"): 4, ("logs", "web"): 0, ("logs", "web", "-n", "1"): 0,
        ("logs", "nosuch"): 4, ("logs",): 2, ("tree",): 0, ("analyze",): 0,
        ("frobnicate",): 2, (): 2, ("--help",): 0, ("stop",): 2,
        ("check", str(vigil.units)): 0, ("check", str(bad)): 1,
        ("--json", "check", str(vigil.units)): 0, ("convert", str(service)): 0,
        ("convert",): 2,
    }
    for args, code in expect.items():
        got = same_answers(clients, [*sock, *args])
        assert got[0] == code, f"vigilctl {' '.join(args)}: exit {got[0]}, not {code}: {got}"
    # Mutating verbs are refused to other users, the same way by every client.
    got = same_answers(clients, [*sock, "stop", "db"], user=NOBODY)
    assert got[0] == 1 and got[2]
    # A socket that is not there.
    got = same_answers(clients, ["--socket", str(tmp_path / "none"), "list"])
    assert got[0] == 1 and "does not exist" in got[2]


def test_mutating_verbs_answer_alike(vigil, clients):
    vigil.unit("a", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("a", "running")
    sock = ["--socket", vigil.sock]
    for label, path in clients.items():  # each client takes a turn on the same unit
        code, out, err = run([path, *sock, "stop", "a"])
        assert code == 0 and out.startswith("a: stop"), (label, out, err)
        vigil.wait_state("a", "stopped")
        assert run([path, *sock, "status", "a"])[0] == 3, label
        code, out, err = run([path, *sock, "start", "a"])
        assert code == 0 and out.startswith("a: "), (label, out, err)
        vigil.wait_state("a", "running")
        code, out, err = run([path, *sock, "restart", "a"])
        assert code == 0 and out.startswith("a: "), (label, out, err)
        vigil.wait_state("a", "running")
        code, out, err = run([path, *sock, "reload"])
        assert code == 0 and not err, (label, out, err)
    assert same_answers(clients, [*sock, "start", "nosuch"])[0] == 4


def test_sysvinit_names_answer_alike(vigil, clients):
    vigil.start()
    env = dict(os.environ, VIGIL_SOCKET=vigil.sock)
    cases = [("telinit", ["x"], 2), ("telinit", [], 2), ("shutdown", ["-r", "25:99"], 2),
             ("shutdown", ["-c"], 1), ("halt", ["--help"], 0), ("runlevel", [], None),
             ("telinit", ["q"], 0)]
    for name, args, code in cases:
        answers = {label: run([name_as(clients, label, name), *args], env=env)
                   for label in clients}
        assert len(set(answers.values())) == 1, f"{name} {args}: {answers}"
        if code is not None:
            assert answers["venv"][0] == code, f"{name} {args}: {answers['venv']}"
    assert vigil.proc.poll() is None


@pytest.mark.parametrize("name, signo", [("poweroff", signal.SIGINT),
                                         ("reboot", signal.SIGHUP),
                                         ("halt", signal.SIGINT)])
@pytest.mark.parametrize("label", ["frozen", "frozen multi-call"])
def test_power_verbs_from_the_frozen_client(vigil, clients, label, name, signo):
    vigil.unit("svc", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("svc", "running")
    env = dict(os.environ, VIGIL_SOCKET=vigil.sock)
    code, out, err = run([name_as(clients, label, name)], env=env)
    assert code == 0, err
    assert vigil.proc.wait(20) == -signo
    assert "svc: signal SIGTERM" in vigil.console.read_text()


def test_vigilctl_poweroff_from_the_frozen_client(vigil, clients):
    vigil.start()
    code, out, err = run([clients["frozen"], "--socket", vigil.sock, "poweroff"])
    assert code == 0, err
    assert vigil.proc.wait(20) == -signal.SIGINT


def test_forced_poweroff_from_the_frozen_client_calls_reboot_at_once(vigil, clients):
    """`poweroff -f` needs ctypes, which the client program leaves out: it runs in the full
    program. As PID 1 of a fresh namespace, reboot(2) ends the namespace (SIGINT)."""
    poweroff = name_as(clients, "frozen", "poweroff")
    r = subprocess.run(["unshare", "--pid", "--fork", "--kill-child", str(poweroff), "-f"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == -signal.SIGINT, (r.returncode, r.stderr)


def test_poweroff_signals_pid1_when_it_is_this_trees_vigil(vigil, clients, tmp_path):
    """With the tree's own vigil as PID 1, `poweroff` is SIGRTMIN+4 to PID 1: its control
    socket is where no client looks, so only the signal can have brought it down."""
    units = tmp_path / "frozen-units"
    units.mkdir()
    (units / "svc.toml").write_text('[service]\nexec = ["/bin/sleep", "1000"]\n')
    hidden = tmp_path / "hidden.sock"
    console = tmp_path / "frozen-console.log"
    with open(console, "wb") as out:
        proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--kill-child",
             str(FROZEN / "vigil"), "--units", str(units), "--log-dir", str(tmp_path / "l"),
             "--control", str(hidden)], stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)
    try:
        vigil.proc = proc  # wait_for reports its exit, and the fixture kills it
        vigil.console = console
        vigil.wait_for(lambda: hidden.exists() and "started:" in console.read_text(),
                       what="the frozen vigil")
        env = {k: v for k, v in os.environ.items() if k != "VIGIL_SOCKET"}
        r = subprocess.run(["nsenter", "--target", str(vigil.host_pid()), "--pid", "--mount",
                            "--", str(name_as(clients, "frozen", "poweroff"))],
                           capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        assert proc.wait(20) == -signal.SIGINT
        assert "poweroff: stopping services" in console.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
