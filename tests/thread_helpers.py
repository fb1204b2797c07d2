"""Shared by tests that check a worker thread leaves the GUI thread its turns."""

from __future__ import annotations

import threading
import time


def longest_wait_of_this_thread(work, runs: int = 3) -> float:
    """Longest time this (the "GUI") thread waited for the interpreter while ``work`` ran in a
    thread — the smallest of ``runs`` runs: a stray pause (garbage collection, the kernel
    compacting memory, another process) lengthens one run, a call that holds the interpreter
    lengthens every run (one run each: a 0.09 s pause once failed a 3x comparison)."""
    return min(_longest_wait(work) for _ in range(max(runs, 1)))


def _longest_wait(work) -> float:
    done = threading.Event()
    th = threading.Thread(target=lambda: (work(), done.set()))
    th.start()
    last, longest = time.perf_counter(), 0.0
    while not done.is_set():
        time.sleep(0.001)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    th.join()
    return longest
