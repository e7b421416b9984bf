"""Shared pieces of the QEMU tests: images built once per session, one VM per module.

Every console call has its own timeout, each test also has an overall one (SIGALRM),
and a failing test gets the last 60 console lines in its report.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # vm/ and initramfs/ are plain directories of the repo

from initramfs import build as image_build  # noqa: E402 (needs the path above)
from vm import kernel as vm_kernel  # noqa: E402
from vm.qemu import Config, Console  # noqa: E402

TEST_TIMEOUT = 300  # seconds, for any one vm test (TCG is slow; a hang must still end)
TEST_UNITS = Path(__file__).parent / "units"
FROZEN = REPO / "build" / "frozen" / "vigil"
OUT = REPO / "build" / "test"


def _stale(target: Path, sources: list[Path]) -> bool:
    if not target.exists():
        return True
    t = target.stat().st_mtime
    return any(s.stat().st_mtime > t for s in sources)


@pytest.fixture(scope="session")
def images() -> dict[str, Path]:
    """Kernel and both test images (vigil, busybox init), built only when out of date."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (make vm-deps)")
    k = vm_kernel.fetch()
    sources = sorted((REPO / "init" / "vigil").rglob("*.py"))
    if _stale(FROZEN / "vigil", sources):
        subprocess.run([sys.executable, str(REPO / "init/freeze/freeze.py"), "vigil"],
                       check=True)
    inputs = [FROZEN / "vigil", *TEST_UNITS.glob("*.toml"), *(REPO / "units").glob("*.toml"),
              *(REPO / "initramfs").glob("*.py")]
    out = {"kernel": k.vmlinuz}
    for init in ("vigil", "busybox"):
        path = OUT / f"initramfs-{init}.cpio.gz"
        if _stale(path, inputs):
            image_build.build(path, init=init, frozen=FROZEN, extra_units=[TEST_UNITS])
        out[init] = path
    return out


@contextmanager
def _booted(images: dict[str, Path], init: str, exit_on_reboot: bool = True,
           log_name: str = "console") -> Iterator[Console]:
    rdinit = "/sbin/vigil" if init == "vigil" else "/sbin/init"
    cfg = Config(images["kernel"], images[init], rdinit=rdinit, exit_on_reboot=exit_on_reboot)
    OUT.mkdir(parents=True, exist_ok=True)
    with Console(cfg, log_path=OUT / f"{log_name}.log") as console:
        yield console


@pytest.fixture(scope="session")
def boot() -> object:
    """`with boot(images, "vigil"|"busybox", exit_on_reboot=..., log_name=...) as console:`"""
    return _booted


@pytest.fixture(scope="session")
def console_log_dir() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


@pytest.fixture(autouse=True)
def _test_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"test ran longer than {TEST_TIMEOUT} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Console):
                report.sections.append(("console (last 60 lines)", value.tail(60)))
    return report
