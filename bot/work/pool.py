"""A thread pool with a bounded queue: when it is full, `submit` refuses at once instead of piling up work."""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor


class PoolFull(Exception):
    """Every worker is busy and the backlog is full."""


class BoundedPool:
    def __init__(self, workers: int, backlog: int, name: str):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(workers + backlog)
        self.capacity = workers + backlog

    def full(self) -> bool:
        if self._slots.acquire(blocking=False):
            self._slots.release()
            return False
        return True

    def submit(self, fn, *args, **kwargs) -> Future:
        if not self._slots.acquire(blocking=False):
            raise PoolFull()
        try:
            fut = self._pool.submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        fut.add_done_callback(lambda _: self._slots.release())
        return fut

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
