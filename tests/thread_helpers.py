"""Shared by tests that check a worker thread leaves the GUI thread its turns."""

from __future__ import annotations

import threading
import time


def longest_wait_of_this_thread(work) -> float:
    """Longest time this (the "GUI") thread waited for the interpreter while ``work`` ran in a thread."""
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
