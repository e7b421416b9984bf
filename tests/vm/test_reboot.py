"""`reboot` under vigil boots the machine again (QEMU set to survive a reboot)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vm.qemu import Console

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def vm(images: dict[str, Path], boot: Callable[..., Any]) -> Iterator[Console]:
    with boot(images, "vigil", exit_on_reboot=False, log_name="reboot") as console:
        console.login("root", timeout=240)
        console.noise.append(r"^vigil: .*\n")  # vigil's own log lines on the console
        yield console


def test_reboot_boots_again(vm: Console) -> None:
    assert vm.text.count("Linux version") == 1
    vm.sendline("reboot")
    vm.expect(r"Linux version", timeout=120)  # the second kernel's banner
    vm.login("root", timeout=240)
    assert vm.text.count("Linux version") == 2
    assert not vm.seen("Kernel panic")
    assert vm.check("cat /proc/1/comm").strip() == "vigil"


def test_ctrl_alt_del_reboots(vm: Console) -> None:
    # vigil turns Ctrl-Alt-Del into SIGINT to PID 1, which as a machine's init reboots.
    banners = vm.text.count("Linux version")
    vm.monitor("sendkey ctrl-alt-delete")
    vm.expect(r"Linux version", timeout=120)
    vm.login("root", timeout=240)
    assert vm.text.count("Linux version") == banners + 1
    assert not vm.seen("Kernel panic")


def test_halt_stops_the_machine_without_powering_off(vm: Console) -> None:
    vm.sendline("halt")
    vm.expect(r"System halted", timeout=120)  # the kernel's last word for RB_HALT_SYSTEM
    assert vm.seen(r"halt: done after")
    assert vm.proc.poll() is None, "a halted machine stays on; only poweroff ends QEMU"
