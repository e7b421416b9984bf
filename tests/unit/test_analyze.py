"""vigilctl analyze: blame, critical-chain and plot from the analyze verb's reply (pure)."""

import xml.etree.ElementTree as ET

import pytest

from vigil import analyze

BASE = 1000.0   # loop times are CLOCK_MONOTONIC: anything; the first event becomes 0


def unit(name, requested, launched, ready, after=(), state="running", changed=None,
         waited_for=""):
    def t(x):
        return None if x is None else BASE + x
    return {"name": name, "state": state, "requested": t(requested), "launched": t(launched),
            "ready": t(ready), "changed": t(changed), "after": list(after),
            "waited_for": waited_for}


def reply(units, steps=(), now=10.0):
    return {"now": BASE + now, "units": units,
            "steps": [[n, BASE + a, BASE + b] for n, a, b in steps]}


CHAIN = reply([
    unit("a", 1.0, 1.0, 1.5, state="done", changed=1.5),
    unit("b", 1.0, 1.5, 2.3, after=["a"], state="done", changed=2.3, waited_for="a"),
    unit("x", 1.0, 1.0, 1.2),                       # ready early: not what c waited for
    unit("c", 1.0, 2.3, 2.4, after=["b", "x"], waited_for="b"),
    unit("never", None, None, None, state="stopped"),
], steps=[("fstab: mounting", 0.2, 0.9), ("sysctl: sysctl", 0.9, 0.95)])


def test_times_are_relative_to_the_first_event_and_never_started_units_are_left_out():
    items, now = analyze.timings(CHAIN)
    by = {t.name: t for t in items}
    assert now == pytest.approx(9.8)
    assert by["fstab: mounting"].requested == 0.0 and by["fstab: mounting"].kind == "boot"
    assert by["b"].launched == pytest.approx(1.3) and by["b"].ready == pytest.approx(2.1)
    assert by["c"].end is None          # still running
    assert by["a"].end == pytest.approx(1.3)
    assert "never" not in by


def test_span_prints_as_systemd_analyze_does():
    assert [analyze.span(s) for s in (0.0004, 0.056, 1.2345, 1.0, 62.5)] == \
        ["0ms", "56ms", "1.234s", "1s", "1min 2.5s"]


def test_blame_orders_units_and_boot_steps_by_their_own_time_to_ready():
    rows = analyze.blame(analyze.timings(CHAIN)[0])
    assert [(t.name, round(took, 3)) for took, t in rows] == [
        ("b", 0.8), ("fstab: mounting", 0.7), ("a", 0.5), ("x", 0.2), ("c", 0.1),
        ("sysctl: sysctl", 0.05)]


def test_critical_chain_follows_what_became_ready_last():
    items, _ = analyze.timings(CHAIN)
    assert analyze.default_unit(items) == "c"
    chain = analyze.critical_chain(items, "c")
    assert [(link.depth, link.timing.name) for link in chain] == [(0, "c"), (1, "b"), (2, "a")]
    assert analyze.chain_lines(chain) == ["c @2.1s +100ms", "└─b @1.3s +800ms",
                                          "  └─a @800ms +500ms"]


def test_critical_chain_shows_ties_and_stops_at_what_it_has_shown():
    items, _ = analyze.timings(reply([
        unit("a", 0.0, 0.0, 1.0), unit("b", 0.0, 1.0, 1.0, after=["a"]),
        unit("c", 0.0, 1.0, 1.0, after=["a", "b"], state="done", changed=1.0)]))
    names = [(link.depth, link.timing.name, link.repeated)
             for link in analyze.critical_chain(items, "c")]
    # a and b became ready at the same instant; b leads to a again, shown once
    assert names == [(0, "c", False), (1, "a", False), (1, "b", False), (2, "a", True)]
    assert analyze.chain_lines(analyze.critical_chain(items, "c"))[-1] == "  └─a..."


def test_critical_chain_of_a_unit_nobody_started():
    with pytest.raises(KeyError):
        analyze.critical_chain(analyze.timings(CHAIN)[0], "never")


def test_a_dependency_ready_after_the_launch_is_not_in_the_chain():
    # d is ordered after e, but e became ready later (a restart): d did not wait for it
    items, _ = analyze.timings(reply([unit("e", 0.0, 0.0, 5.0),
                                      unit("d", 0.0, 1.0, 2.0, after=["e"])]))
    assert [link.timing.name for link in analyze.critical_chain(items, "d")] == ["d"]


def test_plot_is_svg_with_one_bar_per_unit_and_boot_step():
    svg = analyze.plot(*analyze.timings(CHAIN))
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    rows = root.findall("s:g[@class='row']", ns)
    assert [r.get("data-name") for r in rows] == [
        "fstab: mounting", "sysctl: sysctl", "a", "b", "c", "x"]
    for r in rows:
        assert len(r.findall("s:rect[@class='bar']", ns)) == 1
    # the units that got ready have a thin bar while they ran; boot steps none
    running = {r.get("data-name") for r in rows if r.findall("s:rect[@class='run']", ns)}
    assert running == {"a", "b", "c", "x"}
    # b waited 0.5 s for a: a lighter part of its bar
    b = next(r for r in rows if r.get("data-name") == "b")
    assert b.findall("s:rect[@class='waiting']", ns)
    failed = analyze.plot(*analyze.timings(reply([unit("f", 0.0, 0.1, None, state="failed",
                                                       changed=0.4)])))
    assert f'fill="{analyze.COLOURS["failed"]}"' in failed
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "b (800ms)" in labels and any(label.startswith("1s") for label in labels if label)


def test_plot_of_hostile_names_still_parses():
    svg = analyze.plot(*analyze.timings(reply([unit("evil\x1b]0;owned\x07<&>\"", 0.0, 0.0,
                                                    0.1)])))
    root = ET.fromstring(svg)
    row = root.find("{http://www.w3.org/2000/svg}g[@class='row']")
    assert row.get("data-name") == 'evil\\x1b]0;owned\\x07<&>"'
