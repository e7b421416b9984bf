"""The dependency graph: which units to start, in what order, and the reverse for stopping.

Pure functions over unit names. An edge "a after b" means b must be ready before a starts
and a must be stopped before b stops. `requires`, `wants` and `after` in a, and `before`
in b, all make that edge.

Cycles are broken deterministically: units are visited in name order, each unit's
predecessors in name order, and the edge that closes a cycle when it is first met is
dropped. The cycle is reported with its full path.
"""

from vigil.unit import Unit


def aliases(units: dict[str, Unit]) -> dict[str, str]:
    """Each alias (a unit's `aliases`, systemd's Alias=) -> the unit's own name. A name that
    is a unit of its own is never an alias."""
    return {a: name for name, unit in sorted(units.items()) for a in unit.aliases
            if a not in units}


def resolve(names, alias: dict[str, str]) -> set[str]:
    """Unit names as written (aliases allowed) -> the units' own names."""
    return {alias.get(n, n) for n in names}


def ordering(units: dict[str, Unit], alias: dict[str, str] | None = None) -> dict[str, set[str]]:
    """For each unit, the set of units it must start after (only units that exist)."""
    alias = alias or {}
    after = {name: {d for d in resolve(unit.ordered_after(), alias) if d in units and d != name}
             for name, unit in units.items()}
    for name, unit in units.items():
        for later in resolve(unit.before, alias):
            if later in units and later != name:
                after[later].add(name)
    return after


def break_cycles(after: dict[str, set[str]]) -> list[list[str]]:
    """Remove the edges that close cycles (in place); return each cycle's path.

    A path reads [a, b, ..., a]: a is ordered after b, ..., and back to a.
    """
    cycles = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in sorted(after):
        if root in state:
            continue
        path = [root]
        state[root] = 1
        stack = [iter(sorted(after[root]))]
        while stack:
            node = path[-1]
            nxt = next(stack[-1], None)
            if nxt is None:
                state[node] = 2
                path.pop()
                stack.pop()
            elif state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
                after[node].discard(nxt)
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(after[nxt])))
    return cycles


def pulled_in(roots: list[str], units: dict[str, Unit],
              alias: dict[str, str] | None = None) -> set[str]:
    """The roots and everything they require or want, transitively (existing units only)."""
    alias = alias or {}
    seen: set[str] = set()
    todo = [r for r in resolve(roots, alias) if r in units]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        unit = units[name]
        todo.extend(d for d in resolve((*unit.requires, *unit.wants), alias) if d in units)
    return seen


def start_order(after: dict[str, set[str]]) -> list[str]:
    """A topological order (Kahn's, ties by name): the order units would start in one by one."""
    waiting = {n: set(deps) for n, deps in after.items()}
    order: list[str] = []
    ready = sorted(n for n, deps in waiting.items() if not deps)
    while ready:
        name = ready.pop(0)
        order.append(name)
        newly = []
        for other, deps in waiting.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    newly.append(other)
        ready = sorted(ready + newly)
    return order


def dependents(after: dict[str, set[str]]) -> dict[str, set[str]]:
    """The reverse edges: for each unit, the units ordered after it (stopped before it)."""
    rev: dict[str, set[str]] = {n: set() for n in after}
    for name, deps in after.items():
        for d in deps:
            rev[d].add(name)
    return rev
