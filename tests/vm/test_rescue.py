"""Rescue mode: `single` on the kernel command line starts only the rescue units and a root
shell on the console, no getty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import OUT

from vm.qemu import Config, Console, Exit

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def rescue(images: dict[str, Path]) -> Iterator[Console]:
    cfg = Config(images["kernel"], images["vigil"], append="single")
    OUT.mkdir(parents=True, exist_ok=True)
    with Console(cfg, log_path=OUT / "rescue.log") as console:
        console.expect(r"rescue mode", timeout=240)
        m = console.expect(r"password|[#$] ", timeout=120)
        if "password" in m.group(0):
            console.sendline("")  # root has no password in the test image
            console.expect(r"[#$] ", timeout=60)
        console.noise.append(r"^vigil: .*\n")
        console.run("true", timeout=60)
        yield console


def test_only_the_rescue_shell_runs(rescue: Console) -> None:
    out = rescue.check("vigilctl list")
    states = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:] if line.strip()}
    assert states["rescue"] == "running", out
    assert states["crasher"] == "stopped", out  # an enabled unit, not marked rescue
    assert not any(name.startswith("getty@") for name in states), out


def test_poweroff_from_rescue(rescue: Console) -> None:
    rescue.sendline("vigilctl poweroff")
    assert rescue.wait_exit(120) is Exit.POWEROFF
