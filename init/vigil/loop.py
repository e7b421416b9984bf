"""The one event loop: epoll over file descriptors, a heap of deadlines as its timeout.

Signals arrive as readable data on a signalfd (registered like any other fd by main),
so there are no signal handlers and no races. With no timer due, epoll waits forever:
an idle vigil is not woken up at all.
"""

import heapq
import select
import time
from collections.abc import Callable


class Timer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]):
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: "Timer") -> bool:
        return self.when < other.when


class Loop:
    def __init__(self, on_error: Callable[[str, BaseException], None]):
        self.epoll = select.epoll()
        self.handlers: dict[int, Callable[[int], None]] = {}
        self.timers: list[Timer] = []
        self.on_error = on_error  # PID 1 must survive any handler's exception

    def add(self, fd: int, callback: Callable[[int], None],
            events: int = select.EPOLLIN) -> None:
        self.epoll.register(fd, events)
        self.handlers[fd] = callback

    def modify(self, fd: int, events: int) -> None:
        self.epoll.modify(fd, events)

    def remove(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None:
            try:
                self.epoll.unregister(fd)
            except OSError:
                pass

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self.timers, timer)
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(time.monotonic() + delay, callback)

    @staticmethod
    def now() -> float:
        """The loop's clock (monotonic seconds), which timers are set against."""
        return time.monotonic()

    def _timeout(self) -> float:
        while self.timers and self.timers[0].cancelled:
            heapq.heappop(self.timers)
        if not self.timers:
            return -1
        return max(0.0, self.timers[0].when - time.monotonic())

    def run_once(self) -> None:
        try:
            events = self.epoll.poll(self._timeout())
        except InterruptedError:
            events = []
        for fd, mask in events:
            handler = self.handlers.get(fd)
            if handler is not None:
                self._guard(f"fd {fd}", handler, mask)
        # Only the timers due now: one that a callback sets for "now" runs in the next
        # turn, after the loop has looked at its file descriptors again.
        now = time.monotonic()
        due = []
        while self.timers and self.timers[0].when <= now:
            due.append(heapq.heappop(self.timers))
        for timer in due:
            if not timer.cancelled:
                self._guard("timer", timer.callback)

    def _guard(self, what: str, fn: Callable, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - logged, and the loop goes on
            self.on_error(what, e)
