"""Hostname, timezone, locale, random seed and vigil.toml."""

import os
import tomllib

import pytest

from vigil.boot import settings as s


def test_config_all_keys():
    raw = tomllib.loads('[system]\nhostname = "box"\ntimezone = "Europe/Paris"\n'
                        'locale = { LANG = "fr_FR.UTF-8", LC_TIME = "C" }\nudev = ""\n'
                        '[boot]\nmodules = ["loop"]\ncoldplug = false\ndevice_timeout = 5\n')
    config, problems = s.parse_config(raw, "v.toml")
    assert problems == []
    assert (config.hostname, config.timezone, config.udev) == ("box", "Europe/Paris", "")
    assert config.locale == {"LANG": "fr_FR.UTF-8", "LC_TIME": "C"}
    assert (config.modules, config.coldplug, config.device_timeout) == (["loop"], False, 5.0)
    assert s.parse_config(tomllib.loads('[system]\nlocale = "C.UTF-8"'))[0].locale == {
        "LANG": "C.UTF-8"}


def test_config_errors_name_the_key_and_keep_the_rest():
    raw = tomllib.loads('[system]\nhostnme = "x"\ntimezone = 3\nhostname = "bad name"\n'
                        'locale = { LANG = "C", LC_FOO = "x" }\n[boot]\ncoldplug = 1\n'
                        'device_timeout = -1\nmodules = [1]\n[other]\na = 1\n'
                        '[system.sub]\n')
    config, problems = s.parse_config(raw, "v.toml")
    assert problems == [
        "v.toml: [system] unknown key 'hostnme'",
        "v.toml: [system] timezone must be a string",
        "v.toml: [system] hostname: 'bad name' is not a valid host name",
        "v.toml: [system] locale: not a locale variable (or not a string): LC_FOO",
        "v.toml: [system] unknown key 'sub'",
        "v.toml: [boot] coldplug must be true or false",
        "v.toml: [boot] device_timeout: must not be negative",
        "v.toml: [boot] modules: every module name must be a string",
        "v.toml: unknown section [other]",
    ]
    assert config.hostname is None and config.coldplug is True


def test_load_config_missing_and_broken(tmp_path):
    assert s.load_config(str(tmp_path)) == (s.Config(), [])
    (tmp_path / "etc/vigil").mkdir(parents=True)
    (tmp_path / "etc/vigil/vigil.toml").write_text("[system\n")
    config, problems = s.load_config(str(tmp_path))
    assert config == s.Config() and "vigil.toml" in problems[0]
    (tmp_path / "etc/vigil/vigil.toml").write_text('[system]\nhostname = "h"\n')
    assert s.load_config(str(tmp_path)) == (s.Config(hostname="h"), [])


def test_debian_files(tmp_path):
    assert s.parse_hostname("# comment\n\n  debian  \nother\n") == "debian"
    assert s.parse_hostname("") is None
    assert s.valid_hostname("a-b.example") and not s.valid_hostname("-a")
    assert not s.valid_hostname("a..b") and not s.valid_hostname("x" * 65)
    assert s.zone_from_link("/usr/share/zoneinfo/Europe/Paris") == "Europe/Paris"
    assert s.zone_from_link("../usr/share/zoneinfo/posix/UTC") == "UTC"
    assert s.zone_from_link("/etc/foo") is None
    assert s.parse_env_file('# x\nLANG="en_US.UTF-8"\nexport LC_TIME=C\nFOO=1\nbad\n',
                            s.LOCALE_KEYS) == {"LANG": "en_US.UTF-8", "LC_TIME": "C"}
    assert s.rtc_is_local("0.0 0 0.0\n0\nLOCAL\n") and not s.rtc_is_local("0.0 0 0.0\n0\nUTC\n")
    assert not s.rtc_is_local("")


def test_sources_in_order(tmp_path):
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/hostname").write_text("debian\n")
    (tmp_path / "etc/default/locale").write_text("LANG=C.UTF-8\n")
    os.symlink("/usr/share/zoneinfo/Asia/Tokyo", tmp_path / "etc/localtime")
    root = str(tmp_path)
    assert s.hostname(s.Config(), root) == "debian"
    assert s.hostname(s.Config(hostname="h"), root) == "h"
    assert s.timezone(s.Config(), root) == "Asia/Tokyo"
    (tmp_path / "etc/timezone").write_text("Europe/Berlin\n")
    assert s.timezone(s.Config(), root) == "Europe/Berlin"
    assert s.timezone(s.Config(timezone="UTC"), root) == "UTC"
    assert s.locale(s.Config(), root) == {"LANG": "C.UTF-8"}
    assert s.locale(s.Config(locale={"LANG": "x"}), root) == {"LANG": "x"}
    assert s.environment("UTC", {"LANG": "C"}) == {"LANG": "C", "TZ": "UTC"}
    assert s.environment(None, {}) == {}


@pytest.mark.skipif(not os.path.exists("/usr/share/zoneinfo/Asia/Tokyo"),
                    reason="no tzdata in /usr/share/zoneinfo")
def test_minutes_west_and_kernel_calls(monkeypatch):
    assert s.minutes_west("Asia/Tokyo") == -540
    assert s.minutes_west("America/New_York", when=0) == 300   # January 1970: EST
    assert s.minutes_west("No/Such") is None and s.minutes_west("../etc/passwd") is None
    calls = []
    monkeypatch.setattr(s.linux, "set_kernel_timezone", calls.append)
    assert s.set_timezone("Asia/Tokyo", "/") == []
    assert calls[-1] == -540 and (calls[0] == 0 or s.rtc_is_local(s.read_text("/etc/adjtime")))
    assert s.set_timezone("No/Such") == ["timezone No/Such: no such zone in /usr/share/zoneinfo"]


def test_set_hostname_skips_same_and_invalid(monkeypatch):
    import socket
    calls = []
    monkeypatch.setattr(socket, "sethostname", calls.append)
    assert s.set_hostname(None) == [] and s.set_hostname(socket.gethostname()) == []
    assert s.set_hostname("bad name") == ["hostname 'bad name' is not valid; not set"]
    assert s.set_hostname("vigil-test-host") == [] and calls == ["vigil-test-host"]


def test_shutdown_section_of_vigil_toml():
    from vigil.boot.settings import parse_config
    config, problems = parse_config({"shutdown": {"timeout": 30, "ctrl_alt_del": "ignore",
                                                  "sigterm": "explode"}})
    assert config.shutdown_timeout == 30.0
    assert config.actions == {"sigterm": "poweroff", "ctrl_alt_del": "ignore",
                              "power_failure": "poweroff"}
    assert problems == ["/etc/vigil/vigil.toml: [shutdown] sigterm: expected one of "
                        "poweroff, reboot, halt, ignore, got 'explode'"]


def test_shutdown_numbers_and_actions_checked():
    config, problems = s.parse_config({"shutdown": {"timeout": True, "power_failure": "halt"},
                                       "boot": {"device_timeout": 2.5}}, "v.toml")
    assert problems == ["v.toml: [shutdown] timeout must be a number of seconds"]
    assert config.actions["power_failure"] == "halt" and config.device_timeout == 2.5
    config, problems = s.parse_config({"shutdown": {"timeout": 0, "sigterm": 1}}, "v.toml")
    assert problems == ["v.toml: [shutdown] timeout: must be positive",
                        "v.toml: [shutdown] sigterm must be an action"]
    assert config.shutdown_timeout == 120.0 and config.actions["sigterm"] == "poweroff"
