"""utmp records as glibc lays them out, and run levels read back."""

from vigil import utmp


def test_record_layout_and_round_trip():
    boot = utmp.record(utmp.BOOT_TIME, "reboot", now=1700000000.25)
    assert len(boot) == 384
    (entry,) = utmp.parse(boot)
    assert entry == {"type": 2, "pid": 0, "line": "~", "user": "reboot", "time": 1700000000}


def test_runlevel_from_records():
    assert utmp.current_runlevel([]) is None
    first = utmp.parse(utmp.runlevel_record("2", "N"))
    assert utmp.current_runlevel(first) == ("N", "2")
    later = utmp.parse(utmp.runlevel_record("2", "N") + utmp.runlevel_record("6", "2"))
    assert utmp.current_runlevel(later) == ("2", "6")
