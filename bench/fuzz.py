"""The long fuzz run: the property tests of tests/unit/test_fuzz_*.py (unit parser, the
translators, fstab, the kernel command line, modprobe.d and modules.dep, the control
protocol, log capture) with many more examples each, and how many inputs were tried.

    python bench/fuzz.py [--examples N]      (make bench-fuzz; default 20000 per test)
"""

import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNTS = re.compile(r"- (\d+) passing, (\d+) failing, and (\d+) invalid test cases")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000, help="examples per test")
    args = parser.parse_args()
    env = dict(os.environ, VIGIL_FUZZ_EXAMPLES=str(args.examples))
    tests = sorted(os.path.join("tests/unit", f) for f in os.listdir(f"{ROOT}/tests/unit")
                   if f.startswith("test_fuzz_") and f.endswith(".py"))
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--hypothesis-show-statistics", *tests], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    per_test: dict[str, list[int]] = {}
    current = ""
    for line in r.stdout.splitlines():
        if line.startswith("tests/") and line.rstrip().endswith(":"):
            current = line.rstrip(":").split("::", 1)[1]
        m = COUNTS.search(line)
        if m and current:
            tried = per_test.setdefault(current, [0, 0, 0])
            for i in range(3):
                tried[i] += int(m.group(i + 1))
    print(f"{'property test':<64} {'passing':>9} {'failing':>8} {'invalid':>8}")
    for name, (ok, bad, invalid) in sorted(per_test.items()):
        print(f"{name:<64} {ok:>9,} {bad:>8,} {invalid:>8,}")
    total = sum(sum(v[:2]) for v in per_test.values())
    print(f"inputs tried: {total:,} in {wall:.0f}s ({total / wall:,.0f}/s), "
          f"{args.examples:,} examples asked per test")
    if r.returncode:
        print(r.stdout[-6000:], r.stderr[-2000:], sep="\n")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
