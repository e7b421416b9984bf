"""Which client command lines the frozen client program hands to the full program."""

import pytest

from vigil.multicall import needs_full


@pytest.mark.parametrize("name, args", [
    ("vigilctl", ["check"]),
    ("vigilctl", ["check", "/etc/vigil/units"]),
    ("vigilctl", ["--json", "check", "--import-root", "/mnt"]),
    ("vigilctl", ["--socket", "/run/x", "convert", "/lib/systemd/system/ssh.service"]),
    ("vigilctl", ["--socket=/run/x", "convert", "--all", "-o", "/tmp/u"]),
    ("poweroff", ["-f"]),
    ("reboot", ["--force"]),
    ("halt", ["-p", "-f"]),
])
def test_what_needs_the_unit_parser_or_ctypes_goes_to_the_full_program(name, args):
    assert needs_full(name, args)


@pytest.mark.parametrize("name, args", [
    ("vigilctl", []),
    ("vigilctl", ["status", "check"]),  # a unit named check
    ("vigilctl", ["--socket", "check", "list"]),  # a socket named check
    ("vigilctl", ["--json", "list"]),
    ("vigilctl", ["logs", "web", "-n", "5", "-f"]),
    ("poweroff", []),
    ("reboot", ["--no-wall"]),
    ("halt", ["-w"]),
    ("shutdown", ["-r", "now", "-f"]),
    ("telinit", ["6"]),
    ("runlevel", []),
])
def test_the_rest_stays_in_the_client_program(name, args):
    assert not needs_full(name, args)


@pytest.mark.parametrize("name, args, env", [
    ("poweroff", ["--no-wall"], {}),  # a signal cannot say that
    ("halt", ["-p"], {}),
    ("vigilctl", ["poweroff"], {}),
    ("shutdown", [], {}),
    ("reboot", [], {"VIGIL_SOCKET": "/tmp/elsewhere"}),  # some other vigil's socket
    ("poweroff", [], {}),  # here PID 1 is not this program's vigil
])
def test_power_names_signal_pid1_only_when_it_is_sure(monkeypatch, name, args, env):
    from vigil import multicall
    monkeypatch.delenv("VIGIL_SOCKET", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    sent = []
    monkeypatch.setattr(multicall.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    assert multicall.signal_pid1(name, args) is False
    assert sent == []
