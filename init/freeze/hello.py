"""The smallest frozen program: the start-up and memory floor that bench/ compares vigil to.

With an argument it sleeps that many seconds, so its memory can be read while it runs.
"""

import sys
import time


def main() -> None:
    print("hello", flush=True)
    if len(sys.argv) > 1:
        time.sleep(float(sys.argv[1]))


if __name__ == "__main__":
    main()
