"""`vigilctl analyze plot` as a browser shows it: headless Chromium's screenshot of the SVG,
and every bar looked for in the picture.

    python bench/plot_screenshot.py [--svg FILE] [--png OUT]

Without --svg, vigil runs as PID 1 of a PID namespace (the tests/ns fixture) with a chain
of units a <- b <- c, one that fails and one whose condition does not hold, and the plot is
its `vigilctl analyze plot`. With --svg, the file given (tests/vm/test_package.py leaves the
plot of a real Debian boot in build/test/boot.svg). Chromium renders the SVG at its own
size (device scale 1); for each bar of the SVG (`rect class="bar"`), the pixels of the part
the row's lighter "waiting" bar does not cover are read back from the PNG (Pillow), and the
bar counts as shown when most of them are nearer its fill colour than the page's white.
Prints one line per bar and exits 1 when one is missing. Needs /usr/bin/chromium (`make
bench-plot` installs Debian's chromium, and Pillow into the venv).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "ns"))

SVG = "{http://www.w3.org/2000/svg}"
# As the tool library's notes give them: without the networking flags Chromium keeps
# trying hosts this machine cannot reach.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--force-device-scale-factor=1"]

UNITS = {
    "a": '[service]\ntype = "oneshot"\nexec = ["/bin/sleep", "0.4"]\n',
    "b": '[unit]\nrequires = ["a"]\n[service]\ntype = "oneshot"\nexec = ["/bin/sleep", "0.3"]\n',
    "c": '[unit]\nrequires = ["b"]\n[service]\nexec = ["/bin/sleep", "1000"]\n',
    "broken": '[service]\nexec = ["/bin/sh", "-c", "sleep 0.2; exit 3"]\nrestart = "never"\n',
    "absent": '[unit]\ncondition_path_exists = ["/vigil-no-such-file"]\n'
              '[service]\nexec = ["/bin/sleep", "1000"]\n',
}


def namespace_plot() -> str:
    from conftest import SKIP, Vigil
    if SKIP:
        sys.exit(f"plot: cannot run vigil in a namespace here: {SKIP}")
    v = Vigil(Path(tempfile.mkdtemp(prefix="vigil-plot-")))
    for name, text in UNITS.items():
        v.unit(name, text)
    v.start()
    try:
        v.wait_state("c", "running")
        v.wait_state("broken", "failed")
        return v.ctl("analyze", "plot", check=True).stdout
    finally:
        v.stop()


def screenshot(svg_path: Path, png_path: Path, width: int, height: int) -> float:
    chromium = shutil.which("chromium") or sys.exit("plot: no chromium (make bench-plot)")
    profile = tempfile.mkdtemp(prefix="vigil-chromium-")
    t0 = time.monotonic()
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--window-size={width},{height}", f"--screenshot={png_path}",
                    svg_path.as_uri()], check=True, capture_output=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    return time.monotonic() - t0


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def shown(image, x: float, y: float, w: float, h: float, fill: str) -> float:
    """The share of the bar's pixels nearer its colour than white."""
    want, white = rgb(fill), (255, 255, 255)
    x0, y0 = int(x), int(y)
    x1, y1 = max(int(x + w + 0.999), x0 + 1), max(int(y + h + 0.999), y0 + 1)
    near = total = 0
    for px in range(x0, min(x1, image.width)):
        for py in range(y0, min(y1, image.height)):
            got = image.getpixel((px, py))[:3]
            total += 1
            near += sum((a - b) ** 2 for a, b in zip(got, want, strict=True)) < \
                sum((a - b) ** 2 for a, b in zip(got, white, strict=True))
    return near / total if total else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--svg", type=Path, help="an SVG vigilctl analyze plot wrote")
    ap.add_argument("--png", type=Path, default=ROOT / "build" / "bench" / "boot.png")
    args = ap.parse_args()
    from PIL import Image

    text = args.svg.read_text() if args.svg else namespace_plot()
    root = ET.fromstring(text)
    width, height = int(float(root.get("width"))), int(float(root.get("height")))
    args.png.parent.mkdir(parents=True, exist_ok=True)
    svg_path = args.png.with_suffix(".svg")
    svg_path.write_text(text)
    took = screenshot(svg_path, args.png, width, height)
    image = Image.open(args.png).convert("RGB")
    print(f"{svg_path} ({width}x{height}) -> {args.png} ({image.width}x{image.height}), "
          f"Chromium {took:.1f} s")
    missing = 0
    print(f"{'row':<40} {'kind':<5} {'fill':<8} {'visible bar (x, y, w, h)':<26} shown")
    for g in root.iter(f"{SVG}g"):
        if g.get("class") != "row":
            continue
        rects = {r.get("class"): r for r in g.iter(f"{SVG}rect")}
        for bar in [rects["bar"]] if "bar" in rects else []:
            box = [float(bar.get(k)) for k in ("x", "y", "width", "height")]
            if "waiting" in rects:   # drawn over the bar's start: what is left of it shows
                covered = float(rects["waiting"].get("width"))
                box[0], box[2] = box[0] + covered, max(box[2] - covered, 1.0)
            share = shown(image, *box, bar.get("fill"))
            ok = share >= 0.5
            missing += not ok
            print(f"{g.get('data-name')[:40]:<40} {g.get('data-kind'):<5} "
                  f"{bar.get('fill'):<8} {'%.0f, %.0f, %.0f, %.0f' % tuple(box):<26} "
                  f"{share:5.0%}{'' if ok else '  MISSING'}")
    bars = sum(1 for r in root.iter(f"{SVG}rect") if r.get("class") == "bar")
    print(f"{bars - missing} of {bars} bars shown in the screenshot")
    return 1 if missing or not bars else 0


if __name__ == "__main__":
    sys.exit(main())
