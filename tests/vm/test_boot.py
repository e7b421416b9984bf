"""vigil as PID 1 of a QEMU guest: one boot for the whole module, checks in order."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vm.qemu import Console, Exit

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def vm(images: dict[str, Path], boot: Callable[..., Any]) -> Iterator[Console]:
    with boot(images, "vigil", log_name="boot") as console:
        console.login("root", timeout=240)
        console.noise.append(r"^vigil: .*\n")  # vigil's own log lines on the console
        yield console


def status(vm: Console, name: str) -> dict[str, Any]:
    """`vigilctl --json status NAME`, whichever JSON shape it prints the object in."""
    out, code = vm.run(f"vigilctl --json status {name}")
    assert code in (0, 3), (code, out)  # 3: the unit exists but is not running now
    try:
        data = json.loads(out)
    except ValueError:
        data = [json.loads(line) for line in out.splitlines() if line.strip()]
    objs = data if isinstance(data, list) else [data]
    for obj in objs:
        if isinstance(obj, dict) and obj.get("name") == name:
            return obj
    raise AssertionError(f"no status for {name} in {out!r}")


def test_boots_to_login_prompt(vm: Console) -> None:
    assert vm.seen(r"Run /sbin/vigil as init process")
    assert vm.seen(r"login: ")


def test_root_is_logged_in(vm: Console) -> None:
    assert vm.check("id -u").strip() == "0"


def test_getty_on_console_is_running(vm: Console) -> None:
    out = vm.check("vigilctl list")
    lines = [line for line in out.splitlines() if "getty@ttyS0" in line]
    assert lines, out
    assert "running" in lines[0], out


def test_pid1_is_frozen_vigil(vm: Console) -> None:
    assert vm.check("cat /proc/1/comm").strip() == "vigil"
    assert vm.check("readlink /proc/1/exe").strip() == "/usr/lib/vigil/vigil"


def test_crashing_service_is_restarted(vm: Console) -> None:
    first = status(vm, "crasher")
    deadline = time.monotonic() + 60
    now = first
    while time.monotonic() < deadline:
        now = status(vm, "crasher")
        if now["restarts"] > first["restarts"] and now["pid"] not in (None, first["pid"]):
            break
        vm.run("sleep 1")
    assert now["restarts"] > first["restarts"], (first, now)
    assert now["pid"] != first["pid"], (first, now)
    assert now["state"] in ("starting", "running"), now


def test_reexec_in_place_keeps_the_getty(vm: Console) -> None:
    before = status(vm, "getty@ttyS0")
    vm.check("vigilctl reexec")
    deadline = time.monotonic() + 60
    info: dict[str, Any] = {}
    while time.monotonic() < deadline:
        out, code = vm.run("vigilctl --json version")
        if code == 0 and json.loads(out).get("reexecs") == 1:
            info = json.loads(out)
            break
        vm.run("sleep 1")
    assert info.get("pid") == 1, info
    after = status(vm, "getty@ttyS0")
    assert after["pid"] == before["pid"] and after["state"] == "running", (before, after)
    assert vm.check("readlink /proc/1/exe").strip() == "/usr/lib/vigil/vigil"


def test_poweroff_ends_qemu_cleanly(vm: Console) -> None:
    vm.sendline("poweroff")
    assert vm.wait_exit(120) is Exit.POWEROFF
    assert not vm.seen("Kernel panic")
