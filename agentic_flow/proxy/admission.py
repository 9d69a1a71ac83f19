"""A bounded waiting room in front of the engine.

The engine runs a fixed number of generations at once; more requests wait here in arrival order, and
when the waiting room is full a request is refused at once (529 overloaded_error) rather than hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..errors import Overloaded


class Admission:
    def __init__(self, max_running: int, max_waiting: int) -> None:
        self.max_running = max_running
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(max_running)
        self.running = 0
        self.waiting = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self.waiting >= self.max_waiting:
            raise Overloaded(
                f"the local model is busy: {self.running} requests running and {self.waiting} waiting "
                f"(the limit is {self.max_waiting}); retry shortly"
            )
        self.waiting += 1
        self._idle.clear()
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()
            if self.running == 0 and self.waiting == 0:
                self._idle.set()

    async def idle(self) -> None:
        """Return once nothing runs or waits (shutdown drains with this)."""
        await self._idle.wait()
