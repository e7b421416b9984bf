"""Swap: flags from options, what is already on, and swapon(2) faked."""

from vigil import linux
from vigil.boot import fstab, swap


def entries(text: str) -> list[fstab.Entry]:
    tab = fstab.parse(text)
    assert tab.problems == []
    return tab.swaps


def test_flags():
    a, b, c, d = entries("/a none swap sw,pri=5,discard\n/b none swap defaults\n"
                         "/c none swap pri=x\n/d none swap discard=once,pri=99999\n")
    assert swap.swap_flags(a) == (linux.SWAP_FLAG_PREFER | 5 | linux.SWAP_FLAG_DISCARD, None)
    assert swap.swap_flags(b) == (0, None)
    assert swap.swap_flags(c) == (0, "fstab line 3: pri=x is not a number")
    assert swap.swap_flags(d)[1] == "fstab line 4: pri=99999 is out of range (0-32767)"


def test_swap_on_skips_and_reports(monkeypatch, tmp_path):
    on = tmp_path / "on"
    new = tmp_path / "new"
    busy = tmp_path / "busy"
    for f in (on, new, busy):
        f.write_bytes(b"")
    calls = []

    def fake_swapon(path: str, flags: int = 0) -> None:
        if path == str(busy):
            raise OSError(22, "Invalid argument")
        calls.append((path, flags))

    monkeypatch.setattr(swap.linux, "swapon", fake_swapon)
    monkeypatch.setattr(swap, "read_text", lambda path: f"Filename Type\n{on} file 1 0 -2\n")
    text = (f"{on} none swap defaults\n{new} none swap pri=3\n{busy} none swap defaults\n"
            f"{tmp_path}/gone none swap nofail\n{tmp_path}/gone2 none swap defaults\n"
            f"{new} none swap noauto\n")
    problems = swap.swap_on(entries(text), default_timeout=0)
    assert calls == [(str(new), linux.SWAP_FLAG_PREFER | 3)]
    assert problems == [f"swap {busy} (fstab line 3): Invalid argument",
                        f"swap {tmp_path}/gone2 (fstab line 5): not found"]
