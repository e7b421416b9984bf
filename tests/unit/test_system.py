"""boot/system.py: the steps of stage 1 in order, what crosses back to PID 1, the units
generated for this machine. Every side effect on the running system is faked."""

import json
import socket
import subprocess
import sys

import pytest

from vigil.boot import fstab, initscripts, network, problem_table, system
from vigil.boot import settings as s
from vigil.boot.cmdline import Cmdline


@pytest.fixture
def faked(tmp_path, monkeypatch) -> list[str]:
    """A root in tmp_path; hostname, kernel timezone and mounts recorded, not done."""
    (tmp_path / "etc/vigil").mkdir(parents=True)
    (tmp_path / "etc/hostname").write_text("vigil-box\n")
    (tmp_path / "etc/timezone").write_text("UTC\n")
    done: list[str] = []
    monkeypatch.setattr(socket, "sethostname", lambda name: done.append(f"hostname {name}"))
    monkeypatch.setattr(s.linux, "set_kernel_timezone", lambda west: done.append(f"tz {west}"))
    monkeypatch.setattr(s, "minutes_west", lambda zone, root="/", when=None: 0)
    monkeypatch.setattr(s, "rtc_is_local", lambda text: False)
    monkeypatch.setattr(fstab, "remount_root", lambda tab, timeout: done.append("remount") or [])
    monkeypatch.setattr(fstab, "mount_all", lambda tab, timeout: done.append("mount") or [])
    monkeypatch.setattr(initscripts, "run_lock", lambda: done.append("/run/lock") or [])
    monkeypatch.setattr(network, "loopback_up", lambda: done.append("lo") or [])
    return done


def test_bring_up_in_order_never_raises(tmp_path, monkeypatch, faked):
    (tmp_path / "etc/fstab").write_text("tmpfs /vigil-test-no-such-dir tmpfs defaults\n"
                                        "/dev/vigil-none none swap defaults\nbad line\n"
                                        "/vigil-no-such-swapfile none swap defaults\n")
    (tmp_path / "etc/vigil/vigil.toml").write_text(
        '[system]\nlocale = "C.UTF-8"\nx = 1\n[shutdown]\ntimeout = 30\nsigterm = "halt"\n')

    def broken(tab, timeout):
        raise RuntimeError("bug")
    monkeypatch.setattr(fstab, "mount_all", broken)
    result = system.bring_up(Cmdline("vigil.device_timeout=0"), str(tmp_path))
    assert result.environment == {"LANG": "C.UTF-8", "TZ": "UTC"}
    assert faked == ["remount", "/run/lock", "lo", "hostname vigil-box", "tz 0", "tz 0"]
    assert result.problems == [   # vigil.toml's problem once: it is read once
        f"config: {tmp_path}/etc/vigil/vigil.toml: [system] unknown key 'x'",
        f"fstab: {tmp_path}/etc/fstab:3: needs at least device, mount point and type, "
        "got 'bad line'",
        "fstab: mounting: internal error: RuntimeError('bug')",
        "swap: swap /vigil-no-such-swapfile (fstab line 4): not found",
    ]
    assert list(problem_table(result.problems)) == ["config", "fstab", "fstab#2", "swap"]
    # the swap device that is not there holds nothing up: a unit waits for it
    unit = (tmp_path / "run/vigil/units/dev-vigil\\x2dnone.swap.toml").read_text()
    assert '"--swap", "/dev/vigil-none"]' in unit
    assert result.shutdown_timeout == 30.0
    assert result.actions == {"sigterm": "halt", "ctrl_alt_del": "reboot",
                              "power_failure": "poweroff"}


def test_result_crosses_the_child_boundary_as_json(tmp_path, faked):
    sent = system.bring_up(Cmdline(""), str(tmp_path))
    back = system.BootResult.from_json(json.loads(json.dumps(sent.to_json())))
    assert back.to_json() == sent.to_json()
    assert (back.shutdown_timeout, back.actions["sigterm"]) == (120.0, "poweroff")


@pytest.mark.parametrize("data", [None, [], "x", {}, {"problems": []},
                                  {"problems": 1, "environment": {}, "shutdown_timeout": 1,
                                   "actions": {}},
                                  {"problems": [], "environment": {}, "shutdown_timeout": "x",
                                   "actions": {}},
                                  {"problems": [], "environment": {}, "shutdown_timeout": 1,
                                   "actions": {}, "extra": 1}])
def test_from_json_refuses_what_to_json_did_not_make(data):
    with pytest.raises(ValueError, match="not a boot result"):
        system.BootResult.from_json(data)


def _executable(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)


def _units(root) -> dict[str, str]:
    d = root / "run/vigil/units"
    return {p.stem: p.read_text() for p in d.glob("*.toml")} if d.is_dir() else {}


def test_udev_units_follow_vigil_toml(tmp_path):
    assert system.udev_units(None, str(tmp_path)) == [] and _units(tmp_path) == {}
    _executable(tmp_path / "lib/systemd/systemd-udevd")
    _executable(tmp_path / "sbin/udevd")
    assert system.udev_units("", str(tmp_path)) == [] and _units(tmp_path) == {}   # none
    assert system.udev_units("/sbin/udevd", str(tmp_path)) == []
    units = _units(tmp_path)
    assert sorted(units) == ["udev-trigger", "udevd"]
    assert 'exec = ["/sbin/udevd"]' in units["udevd"] and 'type = "simple"' in units["udevd"]
    assert system.udev_units(None, str(tmp_path)) == []   # the usual places: systemd's first
    assert 'exec = ["/lib/systemd/systemd-udevd"]' in _units(tmp_path)["udevd"]
    assert system.udev_units("/usr/sbin/nope", str(tmp_path)) == [
        "vigil.toml [system] udev = '/usr/sbin/nope': not an executable"]


def test_bring_up_generates_the_units(tmp_path, faked):
    _executable(tmp_path / "lib/systemd/systemd-udevd")
    _executable(tmp_path / "usr/sbin/udevd")
    (tmp_path / "etc/vigil/vigil.toml").write_text('[system]\nudev = "/usr/sbin/udevd"\n')
    (tmp_path / "etc/fstab").write_text("srv:/export /mnt/remote nfs _netdev 0 0\n")
    assert system.bring_up(Cmdline(""), str(tmp_path)).problems == []
    units = _units(tmp_path)
    assert 'exec = ["/usr/sbin/udevd"]' in units["udevd"]
    assert sorted(units) == ["remote-fs", "udev-trigger", "udevd"]
    assert '"remote-fs", "/mnt/remote"]' in units["remote-fs"]


def test_write_units_failure_is_a_problem(tmp_path):
    (tmp_path / "run").write_text("not a directory")
    problems = system.write_units({"a": "", "b": ""}, str(tmp_path))
    assert len(problems) == 1 and problems[0].startswith("cannot write a, b to ")


def test_pid1_side_stays_light():
    """What PID 1 imports for stage 1 must not pull in what the child's steps need."""
    code = ("import sys, vigil.main\n"
            "from vigil.boot import cmdline, early, initrd, system\n"
            "import vigil.child, vigil.shutdown\n"
            "heavy = {'dataclasses', 'subprocess', 'pyudev', 'zoneinfo', 'tomllib'}\n"
            "print(sorted(heavy & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("text", ['plain', 'a "quoted" b', "back\\slash", "tab\tnew\nline",
                                  "\x00\x1f\x7f", "é ✓", ""])
def test_toml_string_round_trips(text):
    import tomllib

    from vigil.boot import toml_string
    assert tomllib.loads(f"x = {toml_string(text)}\n") == {"x": text}


def test_gettys_on_consoles_and_six_virtual_terminals():
    cmd = Cmdline("root=/dev/vda console=ttyS0,115200n8 console=tty1")
    assert system.gettys(cmd, has_vts=True) == [
        "getty@ttyS0", "getty@tty1", "getty@tty2", "getty@tty3", "getty@tty4", "getty@tty5",
        "getty@tty6"]
    assert system.gettys(cmd, has_vts=False) == ["getty@ttyS0", "getty@tty1"]
    assert system.gettys(Cmdline(""), has_vts=False) == []
    assert system.gettys(Cmdline(""), has_vts=True) == [f"getty@tty{n}" for n in range(1, 7)]


@pytest.mark.parametrize("udevd, toml, cmdline, expected", [
    (False, "", "", ["coldplug"]),                  # no udev: vigil replays the devices
    (True, "", "", []),                             # udev's trigger unit does it
    (True, "", "vigil.coldplug=1", ["coldplug"]),   # asked for on the command line
    (False, "[boot]\ncoldplug = false\n", "", []),
    (False, "", "vigil.coldplug=0", []),
    (True, '[system]\nudev = ""\n', "", ["coldplug"]),   # vigil.toml: no udev here
    (True, "", "single", ["coldplug"]),            # rescue mode: udev does not run
])
def test_coldplug_is_vigils_only_without_udev(tmp_path, monkeypatch, faked, udevd, toml,
                                              cmdline, expected):
    from vigil.boot import modules
    (tmp_path / "lib/modules" / modules.os.uname().release).mkdir(parents=True)
    if udevd:
        _executable(tmp_path / "lib/systemd/systemd-udevd")
    (tmp_path / "etc/vigil/vigil.toml").write_text(toml)
    done: list[str] = []
    monkeypatch.setattr(modules, "coldplug", lambda db, moddir, loaded: done.append("coldplug"))
    monkeypatch.setattr(modules, "loaded_modules", set)
    system.bring_up(Cmdline(cmdline), str(tmp_path))
    assert done == expected


def test_coldplug_after_all_when_var_waits_for_a_disk(tmp_path, monkeypatch, faked):
    """With udev, a /var whose disk is not there gets vigil's coldplug before stage 1
    waits for it: udev only runs once stage 1 is done."""
    from vigil.boot import modules
    (tmp_path / "lib/modules" / modules.os.uname().release).mkdir(parents=True)
    _executable(tmp_path / "lib/systemd/systemd-udevd")
    (tmp_path / "etc/fstab").write_text("LABEL=vigil-no-such-var /var ext4 defaults 0 2\n")
    done: list[str] = []
    monkeypatch.setattr(modules, "coldplug", lambda db, moddir, loaded: done.append("coldplug"))
    monkeypatch.setattr(modules, "loaded_modules", set)
    result = system.bring_up(Cmdline(""), str(tmp_path))
    assert done == ["coldplug"]
    assert "modules: coldplug for /usr or /var" in [name for name, _a, _b in result.steps]
