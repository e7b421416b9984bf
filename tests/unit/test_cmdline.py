"""The kernel command line parser."""

from vigil.boot.cmdline import Cmdline


def test_consoles_values_and_init_args():
    c = Cmdline('root=/dev/vda ro console=tty0 console=ttyS0,115200n8 quiet '
                'vigil.x="a b" init=/sbin/vigil -- single --foo\n')
    assert c.consoles() == [("tty0", ""), ("ttyS0", "115200")]
    assert c.get("root") == "/dev/vda" and c.has("ro") and c.get("quiet") == ""
    assert c.get("vigil.x") == "a b"
    assert c.init_args == ["single", "--foo"]
    assert c.get("missing", "d") == "d"


def test_last_value_wins_and_empty():
    c = Cmdline("a=1 a=2 console=/dev/ttyS1")
    assert c.get("a") == "2" and c.values["a"] == ["1", "2"]
    assert c.consoles() == [("ttyS1", "")]
    assert Cmdline("").values == {} and Cmdline("  ").init_args == []


def test_rescue_mode_words():
    from vigil.boot.system import rescue_mode
    assert rescue_mode(Cmdline("root=/dev/vda ro single"), [])
    assert rescue_mode(Cmdline("root=/dev/vda -- rescue"), [])
    assert rescue_mode(Cmdline("root=/dev/vda"), ["S"])
    assert not rescue_mode(Cmdline("root=/dev/vda ro quiet console=ttyS0"), [])
