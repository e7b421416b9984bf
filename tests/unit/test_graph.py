"""The dependency graph: ordering, cycles, pulled-in units, reverse order."""

from vigil import graph
from vigil.unit import Unit


def units(**spec):
    return {name: Unit(name, f"/{name}.toml", exec=("x",), **kw) for name, kw in spec.items()}


def test_every_kind_of_edge_orders():
    u = units(a={}, b={"requires": ("a",)}, c={"wants": ("b",)}, d={"after": ("c",)},
              e={"before": ("a",)}, f={"after": ("ghost",)})
    after = graph.ordering(u)
    assert after == {"a": {"e"}, "b": {"a"}, "c": {"b"}, "d": {"c"}, "e": set(), "f": set()}
    assert graph.start_order(after) == ["e", "a", "b", "c", "d", "f"]
    rev = graph.dependents(after)
    assert rev["a"] == {"b"} and rev["e"] == {"a"}


def test_cycle_reported_with_path_and_broken_deterministically():
    u = units(a={"after": ("c",)}, b={"after": ("a",)}, c={"after": ("b",)}, d={})
    after = graph.ordering(u)
    cycles = graph.break_cycles(after)
    assert cycles == [["a", "c", "b", "a"]]
    assert "a" not in after["b"]  # the edge that closed the cycle (b after a) is dropped
    assert graph.start_order(after) == ["b", "c", "a", "d"]
    # same input, same answer
    again = graph.ordering(u)
    assert graph.break_cycles(again) == cycles and again == after


def test_self_loop_and_two_cycles():
    u = units(a={"after": ("b",)}, b={"after": ("a",)}, x={"after": ("y",)},
              y={"after": ("x",)})
    after = graph.ordering(u)
    assert graph.break_cycles(after) == [["a", "b", "a"], ["x", "y", "x"]]
    assert not graph.break_cycles(after)


def test_pulled_in_follows_requires_and_wants_only():
    u = units(a={"requires": ("b",)}, b={"wants": ("c",)}, c={}, d={"after": ("a",)},
              e={"wants": ("ghost",)})
    assert graph.pulled_in(["a"], u) == {"a", "b", "c"}
    assert graph.pulled_in(["e", "nope"], u) == {"e"}
