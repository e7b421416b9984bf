"""The harness itself, against busybox init: login, exact output and status, endings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from vm.qemu import Config, Console, Exit

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def vm(images: dict[str, Path], boot: Callable[..., Any]) -> Iterator[Console]:
    with boot(images, "busybox", log_name="harness") as console:
        console.login("root", timeout=180)
        yield console


def test_run_returns_output_and_status(vm: Console) -> None:
    assert vm.run("echo hi; false") == ("hi\n", 1)


def test_run_multiline_and_success(vm: Console) -> None:
    out, status = vm.run("printf 'a\\nb\\n'; echo c")
    assert (out, status) == ("a\nb\nc\n", 0)


def test_run_after_run_is_not_confused(vm: Console) -> None:
    for i in range(3):
        assert vm.run(f"echo {i}; (exit {i})") == (f"{i}\n", i)


def test_a_kernel_line_in_the_middle_of_output_is_left_out(vm: Console) -> None:
    # written as the kernel's own: printk goes to the serial port past the tty
    out = vm.check("printf 'before'; echo '<4>harness: a printk' > /dev/kmsg; "
                   "sleep 0.3; printf 'after\\n'")
    assert out == "beforeafter\n"
    assert "harness: a printk" in vm.text, "it did reach the console"


def test_characters_split_between_reads_come_whole(vm: Console) -> None:
    # 6,000 bytes of 3-byte characters: the serial port hands them over in many pieces
    out = vm.check("for i in $(seq 1000); do printf '\\342\\224\\224\\342\\224\\200'; "
                   "done; echo")
    assert out == "└─" * 1000 + "\n"


def test_root_has_no_password_and_uid_0(vm: Console) -> None:
    assert vm.check("id -u").strip() == "0"


def test_monitor_answers(vm: Console) -> None:
    assert "running" in vm.monitor("info status")


def test_poweroff_ends_qemu(vm: Console) -> None:
    vm.sendline("poweroff")
    assert vm.wait_exit(120) is Exit.POWEROFF
    assert not vm.seen("Kernel panic")


def test_reboot_survives_when_asked(images: dict[str, Path], boot: Callable[..., Any]) -> None:
    with boot(images, "busybox", exit_on_reboot=False, log_name="harness-reboot") as vm:
        vm.login(timeout=180)
        vm.sendline("reboot")
        vm.expect(r"Linux version", timeout=120)  # the second boot's banner
        vm.login(timeout=180)
        assert vm.check("echo again") == "again\n"


def test_panic_is_detected(images: dict[str, Path], console_log_dir: Path) -> None:
    cfg = Config(images["kernel"], images["busybox"], rdinit="/no/such/init")
    with Console(cfg, log_path=console_log_dir / "harness-panic.log") as vm:
        assert vm.wait_exit(180) is Exit.PANIC
