"""Swap: flags from options, what is already on, and swapon(2) faked."""

import pytest

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
    problems = swap.swap_on(entries(text), pending=[])
    assert calls == [(str(new), linux.SWAP_FLAG_PREFER | 3)]
    assert problems == [f"swap {busy} (fstab line 3): Invalid argument",
                        f"swap {tmp_path}/gone2 (fstab line 5): not found"]


def test_a_swap_device_not_there_goes_to_a_unit_without_waiting(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(swap.linux, "swapon", lambda path, flags=0: calls.append(path))
    monkeypatch.setattr(swap, "read_text", lambda path: "Filename Type\n")
    monkeypatch.setattr(fstab, "find_device",
                        lambda spec: "/dev/vdc" if spec == "LABEL=here" else None)
    monkeypatch.setattr(fstab, "wait_for_device", lambda spec, timeout: pytest.fail("waited"))
    pending: list[fstab.Entry] = []
    text = "LABEL=gone none swap sw\nLABEL=here none swap sw\nUUID=1-2 none swap nofail\n"
    assert swap.swap_on(entries(text), pending) == []
    assert calls == ["/dev/vdc"]
    assert [e.spec for e in pending] == ["LABEL=gone", "UUID=1-2"]


def test_swap_units_are_named_as_systemd_names_them():
    import tomllib
    tab = fstab.parse("LABEL=my-swap none swap sw\n/dev/vdc2 none swap sw\n")
    tab.pending_swaps = list(tab.swaps)
    units = fstab.mount_units(tab, ["/usr/lib/vigil/vigil"])
    assert list(units) == ["dev-disk-by\\x2dlabel-my\\x2dswap.swap", "dev-vdc2.swap"]
    raw = tomllib.loads(units["dev-vdc2.swap"])
    assert raw["service"]["exec"] == ["/usr/lib/vigil/vigil", "--swap", "/dev/vdc2"]
    assert raw["service"]["type"] == "notify" and raw["service"]["restart"] == "never"


def test_swap_later_says_what_went_wrong(monkeypatch, tmp_path, capfd):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/fstab").write_text("LABEL=late none swap x-systemd.device-timeout=0\n")
    monkeypatch.setattr(fstab, "wait_for_device", lambda spec, timeout: None)
    assert swap.swap_later("LABEL=late", 30, str(tmp_path)) == 1
    assert swap.swap_later("LABEL=other", 30, str(tmp_path)) == 1
    err = capfd.readouterr().err
    assert "swap LABEL=late (fstab line 1): device not found within 0 s" in err
    assert "swap LABEL=other: not in /etc/fstab" in err
