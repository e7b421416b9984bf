"""Security, as a user sees it: who may do what on the control socket (with a real
unprivileged user, nobody), idle clients, unit files others could write, what a service
gets (fds, environment, groups, umask), the notify socket, and hostile text on the console."""

import json
import os
import subprocess
import sys
import textwrap
import time

import probes
import pytest

pytestmark = pytest.mark.ns

NOBODY = 65534
SLEEPER = '[service]\nexec = ["/bin/sleep", "1000"]\n'


def as_nobody(vigil, script: str, *args: str, timeout: float = 60) -> str:
    """Run a Python script as nobody (it can import vigil from the venv)."""
    path = os.path.join(os.path.dirname(vigil.sock), "script.py")
    with open(path, "w") as f:
        f.write(textwrap.dedent(script))
    os.chmod(path, 0o644)
    r = subprocess.run([sys.executable, path, vigil.sock, *args], capture_output=True,
                       text=True, timeout=timeout, user=NOBODY, group=NOBODY,
                       extra_groups=[])
    assert r.returncode == 0, r.stderr
    return r.stdout


ASK_ALL = """
import json, sys
from vigil import client
out = {}
for line in sys.argv[2:]:
    verb, *args = line.split()
    out[line] = client.request(sys.argv[1], verb, args, timeout=20)
print(json.dumps(out))
"""

MUTATING = ["start svc", "stop svc", "restart svc", "reload", "reload svc", "poweroff",
            "reboot", "halt", "reexec", "schedule poweroff 9999999999 0 hi", "cancel",
            "rescue", "default"]
READING = ["ping", "version", "list", "status", "status svc", "logs svc", "dump", "analyze",
           "tree"]


def test_mutating_verbs_need_root_and_reading_verbs_do_not(vigil):
    vigil.unit("svc", SLEEPER)
    vigil.start()
    before = vigil.wait_state("svc", "running")
    replies = json.loads(as_nobody(vigil, ASK_ALL, *MUTATING, *READING))
    for request in MUTATING:
        r = replies[request]
        assert r == {"ok": False, "code": 1, "error": f"{request.split()[0]}: permission "
                     "denied (needs root)"}, (request, r)
    for request in READING:
        assert replies[request]["ok"] is True, (request, replies[request])
    after = vigil.status("svc")
    assert (after["state"], after["pid"], after["restarts"]) == ("running", before["pid"], 0)
    status = json.loads(vigil.ctl("--json", "status", check=True).stdout)
    assert status["scheduled"] is None and status["pid"] == 1


HOLD_IDLE = """
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
path, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
held, made, end = [], 0, time.monotonic() + seconds
while time.monotonic() < end:
    held = [s for s in held if s.fileno() >= 0]
    while len(held) < n:  # connect, never write; again when vigil closes one
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:  # the backlog is full: later
            s.close()
            break
        except OSError:  # vigil is gone (powered off)
            end = 0
            break
        held.append(s)
        made += 1
    for s in list(held):
        try:
            if s.recv(100, socket.MSG_DONTWAIT) == b"":
                s.close()
        except BlockingIOError:
            pass
        except OSError:
            s.close()
    time.sleep(0.01)
print(made)
"""


def test_a_thousand_idle_users_cannot_keep_roots_poweroff_out(vigil, capsys):
    vigil.unit("svc", SLEEPER)
    vigil.start()
    vigil.wait_state("svc", "running")
    script = os.path.join(os.path.dirname(vigil.sock), "hold.py")
    with open(script, "w") as f:
        f.write(HOLD_IDLE)
    os.chmod(script, 0o644)
    holder = subprocess.Popen([sys.executable, script, vigil.sock, "1000", "12"],
                              user=NOBODY, group=NOBODY, extra_groups=[],
                              stdout=subprocess.PIPE, text=True)
    time.sleep(3)  # the table is full of idle clients, and more keep coming
    took, reply = probes.timed_request(vigil.sock, "status", timeout=20)
    assert reply["ok"], reply
    nobody_answered = vigil.ctl("status", user=NOBODY, timeout=30).returncode == 0
    t0 = time.monotonic()
    r = vigil.ctl("poweroff", timeout=30)
    poweroff = time.monotonic() - t0
    assert r.returncode == 0 and r.stdout.strip() == "poweroff", r.stderr
    assert vigil.proc.wait(60) == -2
    made = holder.communicate(timeout=30)[0]
    with capsys.disabled():
        print(f"\n[figure] 1000 idle unprivileged clients ({made.strip() or '?'} connects): "
              f"root's status answered in {took * 1000:.0f} ms, vigilctl poweroff in "
              f"{poweroff * 1000:.0f} ms; nobody's vigilctl status answered: "
              f"{nobody_answered}")


def test_a_silent_client_loses_its_slot_soon(vigil):
    vigil.start()
    t0 = time.monotonic()
    s = probes.idle_client(vigil.sock)
    s.settimeout(30)
    assert s.recv(100) == b"", "closed without a word"
    held = time.monotonic() - t0
    assert held < 5, f"held its slot {held:.1f}s"


def test_unit_files_others_could_write_are_refused(vigil, tmp_path):
    vigil.unit("good", SLEEPER)
    cases = {  # name -> (how, what the error says)
        "groupw": ("chgrp nogroup; chmod 664", "the file is writable by group nogroup"),
        "owned": ("chown nobody", "the file is owned by user nobody (uid 65534), not root"),
        "worldw": ("chmod 666", "the file is writable by every user"),
    }
    for name, (how, _why) in cases.items():
        vigil.unit(name, SLEEPER)
        path = vigil.units / f"{name}.toml"
        for step in how.split("; "):
            cmd, arg = step.split()
            subprocess.run([cmd, arg, str(path)], check=True)
    shared = tmp_path / "shared"  # a second unit directory that group nogroup may write
    shared.mkdir()
    (shared / "indir.toml").write_text(SLEEPER)
    subprocess.run(["chgrp", "nogroup", str(shared)], check=True)
    os.chmod(shared, 0o775)
    linked = tmp_path / "open"    # a link to a file in a world-writable directory
    linked.mkdir()
    os.chmod(linked, 0o777)
    (linked / "target.toml").write_text(SLEEPER)
    os.symlink(linked / "target.toml", vigil.units / "linked.toml")
    sticky = tmp_path / "sticky"  # a sticky world-writable one (as /tmp) is fine
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    (sticky / "fine.toml").write_text(SLEEPER)
    os.symlink(sticky / "fine.toml", vigil.units / "fine.toml")
    root = tmp_path / "root"      # an imported init.d script and systemd unit
    (root / "etc/init.d").mkdir(parents=True)
    (root / "etc/rc2.d").mkdir()
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    script = root / "etc/init.d/evil"
    script.write_text("#!/bin/sh\n### BEGIN INIT INFO\n# Provides: evil\n"
                      "# Default-Start: 2 3 4 5\n### END INIT INFO\nsleep 1000 &\n")
    os.chmod(script, 0o777)
    os.symlink("../init.d/evil", root / "etc/rc2.d/S01evil")
    unit = root / "etc/systemd/system/bad.service"
    unit.write_text("[Service]\nExecStart=/bin/sleep 1000\n")
    subprocess.run(["chgrp", "nogroup", str(unit)], check=True)
    os.chmod(unit, 0o664)
    os.symlink("../bad.service", root / "etc/systemd/system/multi-user.target.wants/"
               "bad.service")
    vigil.start("--units", str(shared), "--import-root", str(root))
    vigil.wait_state("good", "running")
    vigil.wait_state("fine", "running")
    expect = {n: (str(vigil.units / f"{n}.toml"), why) for n, (_how, why) in cases.items()}
    expect["indir"] = (str(shared / "indir.toml"),
                       f"the directory {shared} is writable by group nogroup")
    expect["linked"] = (str(vigil.units / "linked.toml"),
                        f"the directory {linked} is writable by every user")
    expect["evil"] = (str(script), "the file is writable by every user")
    expect["bad"] = (str(unit), "the file is writable by group nogroup")
    for name, (path, why) in expect.items():
        st = vigil.status(name)
        text = st["why"]["text"]
        assert st["state"] == "failed" and st["pid"] is None, (name, st)
        assert f"{path}: refused: {why}" in text and "could run anything as root" in text, \
            (name, text)
    r = vigil.ctl("check", str(vigil.units))
    assert r.returncode == 1 and "refused" in r.stdout


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def environment(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if e)


def find(vigil, marker: str) -> int:
    return vigil.wait_for(lambda: next((p for p, c in probes.cmdlines(
        vigil.descendants()).items() if c.endswith(marker)), None), what=marker)


def test_what_a_service_gets(vigil):
    vigil.unit("plain", '[service]\nexec = ["/bin/sleep", "8001"]\numask = "077"\n'
               'environment = { MINE = "1" }\n')
    vigil.unit("user", '[service]\nexec = ["/bin/sleep", "8002"]\nuser = "nobody"\n'
               'umask = "027"\n')
    vigil.unit("notified", '[service]\ntype = "notify"\nexec = ["/bin/sleep", "8003"]\n')
    groups = os.getgroups()
    os.setgroups([0, 4, 27, 100])  # vigil starts with supplementary groups of its own
    try:
        vigil.start()
    finally:
        os.setgroups(groups)
    base = {"PATH", "LANG", "HOME", "USER", "LOGNAME", "SHELL"} | (
        {"TERM"} if "TERM" in os.environ else set())
    for marker, extra, umask, groups in (("8001", {"MINE"}, "0077", {0, 4, 27, 100}),
                                         ("8002", set(), "0027", {NOBODY}),
                                         ("8003", {"NOTIFY_SOCKET"}, "0022", None)):
        pid = find(vigil, f"sleep {marker}")
        fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert sorted(fds) == ["0", "1", "2"], fds
        assert fds["0"] == "/dev/null" and fds["1"] == fds["2"]
        assert set(environment(pid)) == base | extra, environment(pid)
        st = proc_status(pid)
        assert st["Umask"] == umask
        if groups is not None:
            assert {int(g) for g in st["Groups"].split()} == groups, st["Groups"]
    assert environment(find(vigil, "sleep 8002"))["USER"] == "nobody"


STRANGER = """
import socket, sys
for path in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(b"READY=1\\nSTATUS=forged", path)
        print("sent")
    except PermissionError:
        print("refused")
"""

SENDER = """import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
path = os.environ["NOTIFY_SOCKET"]
open(sys.argv[1] + "/sock", "w").write(path)
while not os.path.exists(sys.argv[1] + "/go"):
    time.sleep(0.05)
for junk in (b"X" * 70000, b"\\xff\\xfe\\x00READY", b"READY", b"=", b"MAINPID=-1",
             b"MAINPID=99999999999999999999", b"MAINPID=1", b"\\n\\n\\n", b"STATUS=" + b"s" * 5000):
    try:
        s.sendto(junk, path)
    except OSError:
        pass  # too big for the socket: that is what it is for
time.sleep(0.5)
open(sys.argv[1] + "/junk-sent", "w").close()
while not os.path.exists(sys.argv[1] + "/ready"):
    time.sleep(0.05)
s.sendto(b"READY=1\\nSTATUS=mine", path)
time.sleep(1000)
"""


def test_notify_socket_ignores_strangers_and_garbage(vigil):
    box = os.path.join(os.path.dirname(vigil.sock), "box")
    os.mkdir(box)
    os.chmod(box, 0o777)
    script = os.path.join(box, "sender.py")
    with open(script, "w") as f:
        f.write(SENDER)
    os.chmod(script, 0o644)
    vigil.unit("notified", f'[service]\ntype = "notify"\nexec = ["/usr/bin/python3", '
               f'"{script}", "{box}"]\nuser = "nobody"\n')
    vigil.unit("rootly", '[service]\ntype = "notify"\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("bystander", SLEEPER)
    vigil.start()
    bystander = vigil.wait_state("bystander", "running")["pid"]
    vigil.wait_for(lambda: os.path.exists(f"{box}/sock"), what="the service's socket")
    sock = open(f"{box}/sock").read()
    # another process of the same user, outside the service: its READY=1 is not the
    # service's; another user cannot even send to a root service's socket
    out = as_nobody(vigil, STRANGER, sock, os.path.join(os.path.dirname(sock), "rootly"))
    assert out.split() == ["sent", "refused"]
    time.sleep(0.5)
    for name in ("notified", "rootly"):
        st = vigil.status(name)
        assert st["state"] == "starting" and st["status"] != "forged", st
    open(f"{box}/go", "w").close()  # oversized and malformed datagrams from the service
    vigil.wait_for(lambda: os.path.exists(f"{box}/junk-sent"), what="the junk")
    time.sleep(0.3)
    st = vigil.status("notified")
    assert st["state"] == "starting", st
    assert st["pid"] not in (1, None) and len(st["status"]) <= 200
    open(f"{box}/ready", "w").close()
    st = vigil.wait_state("notified", "running")
    assert st["status"] == "mine"
    assert vigil.status("bystander")["pid"] == bystander
    assert json.loads(vigil.ctl("--json", "version").stdout)["pid"] == 1


def test_hostile_names_and_text_do_not_reach_the_console_raw(vigil):
    (vigil.units / "\x1b[2J\x1b]0;owned\x07.toml").write_text(SLEEPER)
    vigil.unit("badexec", '[service]\nexec = ["/nonexistent/\\u001b[31mred\\u0007"]\n'
               'restart = "never"\n')
    vigil.unit("ok", SLEEPER)
    vigil.start()
    vigil.wait_state("ok", "running")
    vigil.wait_state("badexec", "failed")
    console = vigil.console.read_bytes()
    assert b"invalid unit file name" in console and b"\\x1b[2J\\x1b]0;owned\\x07" in console
    lines = [line for line in console.split(b"\n") if line.startswith(b"vigil: ")]
    assert lines and not any(b < 0x20 and b != 0x09 for line in lines for b in line), lines
