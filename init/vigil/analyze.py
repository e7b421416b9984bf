"""`vigilctl analyze`: blame, critical-chain and plot, from the timings vigil returns.

Pure: the reply of the `analyze` verb in, rows, a chain or SVG text out. The reply holds
loop times (CLOCK_MONOTONIC seconds) and this module makes them relative to the first
thing that happened (stage 1's first step, or the first start asked for), as
systemd-analyze makes its times relative to the start of user space.

    units  {name, state, requested, launched, ready, changed, after, waited_for}
           requested: the start was asked for (boot, vigilctl start, a dependent);
           launched: its process was started (after what it is ordered after was ready);
           ready: it became ready (running, a oneshot done); changed: its last transition;
           after: the units it is ordered after (what it may wait for)
    steps  [name, start, end]: stage 1's steps (boot/system.py)
    now    the loop time of the reply
"""

from dataclasses import dataclass
from xml.sax.saxutils import escape as _xml_escape

from vigil.term import escape


@dataclass(frozen=True)
class Timing:
    """One unit or boot step, its times in seconds from the first event (None: not yet)."""
    name: str
    kind: str                    # "unit" or "boot"
    state: str                   # a unit's state; "done" for a boot step
    requested: float | None
    launched: float | None
    ready: float | None
    end: float | None            # left running or ready (stopped, failed, a step's end)
    after: tuple[str, ...] = ()
    waited_for: str = ""

    @property
    def took(self) -> float | None:
        """Its own time to ready: from launch (a boot step: from its start) to ready."""
        if self.ready is None or self.launched is None:
            return None
        return max(0.0, self.ready - self.launched)


def timings(reply: dict) -> tuple[list[Timing], float]:
    """The reply as Timings, and `now`, all relative to the first event."""
    units, steps, now = reply.get("units", []), reply.get("steps", []), reply["now"]
    starts = [u["requested"] for u in units if u.get("requested") is not None]
    starts += [s[1] for s in steps]
    zero = min(starts, default=now)

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - zero, 6)

    out = [Timing(str(name), "boot", "done", rel(start), rel(start), rel(end), rel(end))
           for name, start, end in steps]
    for u in units:
        if u.get("requested") is None:
            continue  # never asked to start
        running = u["state"] in ("running", "starting", "stopping")
        out.append(Timing(u["name"], "unit", u["state"], rel(u["requested"]),
                          rel(u.get("launched")), rel(u.get("ready")),
                          None if running else rel(u.get("changed")),
                          tuple(u.get("after") or ()), u.get("waited_for") or ""))
    return out, round(now - zero, 6)


# --- times as people read them -------------------------------------------------------
def span(seconds: float) -> str:
    """1.234s, 56ms, 2min 3.5s (milliseconds at most, as systemd-analyze prints)."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    minutes, ms = divmod(ms, 60000)
    text = f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}min {text}" if minutes else text


# --- blame ----------------------------------------------------------------------------
def blame(items: list[Timing]) -> list[tuple[float, Timing]]:
    """Units and boot steps that got ready, by their own time to ready, slowest first."""
    rows = [(t.took, t) for t in items if t.took is not None]
    return sorted(rows, key=lambda r: (-r[0], r[1].name))


# --- critical-chain -------------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    depth: int
    timing: Timing
    repeated: bool = False       # already shown higher up: not followed again


def default_unit(items: list[Timing]) -> str | None:
    """The unit that became ready last: where the boot ended."""
    ready = [t for t in items if t.kind == "unit" and t.ready is not None]
    return max(ready, key=lambda t: (t.ready, t.name)).name if ready else None


def critical_chain(items: list[Timing], unit: str) -> list[Link]:
    """What UNIT waited for, as systemd-analyze critical-chain follows it: from the unit,
    the unit it is ordered after that became ready last (before it was launched), and so
    on. Units ready at the same instant are all shown. Raises KeyError for no such unit."""
    by_name = {t.name: t for t in items if t.kind == "unit"}
    chain: list[Link] = []
    seen: set[str] = set()

    def follow(t: Timing, depth: int) -> None:
        chain.append(Link(depth, t))
        seen.add(t.name)
        limit = t.launched if t.launched is not None else t.ready
        # + 1e-6: the times are rounded to microseconds (rel), a dependency ready in the
        # same microsecond as the launch it allowed is still the one it waited for
        deps = [by_name[d] for d in t.after if d in by_name and by_name[d].ready is not None
                and (limit is None or by_name[d].ready <= limit + 1e-6)]
        if not deps:
            return
        latest = max(d.ready for d in deps)
        for d in sorted((d for d in deps if d.ready == latest), key=lambda d: d.name):
            if d.name in seen:
                chain.append(Link(depth + 1, d, repeated=True))
            else:
                follow(d, depth + 1)

    follow(by_name[unit], 0)
    return chain


CHAIN_HEADER = ('The time when a unit became ready is printed after the "@" character.\n'
                'The time the unit took to get ready is printed after the "+" character.')


def chain_lines(chain: list[Link], paint=lambda text: text) -> list[str]:
    """The chain as systemd-analyze prints it; paint(text) highlights the units that
    took time of their own (red, on a terminal)."""
    lines = []
    for link in chain:
        t = link.timing
        prefix = "  " * (link.depth - 1) + "└─" if link.depth else ""
        name = escape(t.name)
        if link.repeated:
            lines.append(f"{prefix}{name}...")
        elif t.took:
            lines.append(prefix + paint(f"{name} @{span(t.launched)} +{span(t.took)}"))
        else:
            lines.append(f"{prefix}{name} @{span(t.ready)}")
    return lines


# --- plot -------------------------------------------------------------------------------
COLOURS = {"running": "#3a9a3a", "done": "#2f8fb0", "failed": "#c83232",
           "starting": "#d6a21e", "stopping": "#d6a21e", "stopped": "#8c8c8c",
           "skipped": "#b4b4b4", "boot": "#6a5acd"}
WAITING = "#d8d8e8"      # from the start request to the launch
ROW, BAR, RUN = 18, 12, 4   # pixels: row height, bar and running-bar thickness
TOP, SCALE_MIN = 60, 800


def _x(text: str) -> str:
    """Text for SVG: XML-escaped, control characters shown as escapes (XML 1.0 forbids
    them)."""
    return _xml_escape(escape(text), {'"': "&quot;"})


def _tick(total: float) -> float:
    """A round tick interval that gives about 10 ticks."""
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600):
        if total / step <= 12:
            return step
    return 3600.0


def plot(items: list[Timing], now: float) -> str:
    """A self-contained SVG: one row per boot step and unit (in the order they started),
    a bar from the start request to ready (lighter while it waited for its
    dependencies), a thin bar while it ran, coloured by outcome, and a time axis."""
    rows = sorted(items, key=lambda t: (t.kind != "boot", t.requested or 0.0, t.name))
    ends = [now] + [t.end for t in rows if t.end is not None]
    total = max(max(ends), 0.001)
    width_px = max(SCALE_MIN, 100 * len(rows) ** 0.5)
    per_s = width_px / total
    # names in a column on the left, right-aligned against the bars
    left = 7 * max((len(t.name) + 10 for t in rows), default=20) + 10
    width, height = left + width_px + 20, TOP + ROW * len(rows) + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">',
           "<style>text{font-family:sans-serif;font-size:11px;fill:#222}"
           ".axis{stroke:#ddd;stroke-width:1}.legend text{font-size:10px}</style>",
           f'<rect width="{width:.0f}" height="{height:.0f}" fill="#fff"/>',
           f'<text x="10" y="16" style="font-size:14px">vigil: {len(rows)} units and '
           f"boot steps, {_x(span(now))} since the first</text>"]
    # legend
    out.append('<g class="legend">')
    for i, (what, colour) in enumerate([("waiting", WAITING), *COLOURS.items()]):
        x = 10 + 80 * i
        out.append(f'<rect x="{x}" y="26" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="35">{what}</text>')
    out.append("</g>")
    # time axis: a line and a label per tick
    step = _tick(total)
    k = 0
    while k * step <= total + 1e-9:
        x = left + k * step * per_s
        out.append(f'<line class="axis" x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" '
                   f'y2="{TOP + ROW * len(rows)}"/>'
                   f'<text x="{x:.1f}" y="{TOP - 10}" text-anchor="middle">'
                   f"{_x(span(k * step))}</text>")
        k += 1
    for i, t in enumerate(rows):
        y = TOP + i * ROW + (ROW - BAR) / 2
        start = t.requested or 0.0
        stop = t.ready if t.ready is not None else (t.end if t.end is not None else now)
        colour = COLOURS["boot" if t.kind == "boot" else t.state] \
            if (t.kind == "boot" or t.state in COLOURS) else COLOURS["stopped"]
        tip = [t.name, t.state]
        if t.took is not None:
            tip.append(f"ready after {span(t.took)}")
        if t.waited_for:
            tip.append(f"waited for {t.waited_for}")
        out.append(f'<g class="row" data-name="{_x(t.name)}" data-kind="{t.kind}">'
                   f"<title>{_x(', '.join(tip))}</title>")
        x0 = left + start * per_s
        x1 = left + stop * per_s
        out.append(f'<rect class="bar" x="{x0:.1f}" y="{y:.1f}" '
                   f'width="{max(x1 - x0, 1):.1f}" height="{BAR}" fill="{colour}"/>')
        if t.launched is not None and t.launched > start:
            xl = left + min(t.launched, stop) * per_s
            out.append(f'<rect class="waiting" x="{x0:.1f}" y="{y:.1f}" '
                       f'width="{max(xl - x0, 0):.1f}" height="{BAR}" fill="{WAITING}"/>')
        if t.kind == "unit" and t.ready is not None:
            until = t.end if t.end is not None else now
            xr = left + until * per_s
            out.append(f'<rect class="run" x="{x1:.1f}" y="{y + (BAR - RUN) / 2:.1f}" '
                       f'width="{max(xr - x1, 0):.1f}" height="{RUN}" fill="{colour}" '
                       'fill-opacity="0.55"/>')
        out.append(f'<text x="{left - 6}" y="{y + BAR - 2:.1f}" text-anchor="end">'
                   + _x(t.name) + (f" ({_x(span(t.took))})" if t.took else "")
                   + "</text></g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
