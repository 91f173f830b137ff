"""How many threads torch uses: the cores that other processes leave free.

torch starts one OpenMP thread per core. When another process keeps one of them busy, every
parallel operation waits at its barrier for the thread that the scheduler has put aside, and a
small-batch RNN step (dozens of such operations) runs 5-40x slower, not the 2x that sharing the
core fairly would cost (docs/benchmarks.md, "Speed when the cores are shared"). So seqvae
watches how much of its cores other processes use, from ``/proc/stat`` minus its own CPU time,
and sets ``torch.set_num_threads`` to the cores left free, re-checked every
:data:`CHECK_SECONDS` of training or generation. Reading two counters is all a check costs.

A thread count the user chose is never changed: ``OMP_NUM_THREADS`` set (torchrun sets it),
``SEQVAE_NUM_THREADS=N``, or ``SEQVAE_NUM_THREADS=fixed`` to keep torch's own choice.
Where ``/proc/stat`` does not exist (macOS, Windows) the governor does nothing.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["threads_for", "ThreadGovernor", "adapt_threads"]

CHECK_SECONDS = 1.0
# A core counts as taken once other processes use more than this share of it: a competitor at
# 30% already makes a second thread wait at every barrier for a third of the time.
BUSY_SHARE = 0.25
STALE_CHECKS = 5
logger = logging.getLogger(__name__)


def threads_for(cores: int, others_busy: float) -> int:
    """Threads for ``cores`` usable cores when other processes keep ``others_busy`` cores busy.

    Each core that others use more than :data:`BUSY_SHARE` of is left to them; at least one
    thread always runs.
    """
    taken = max(0, math.ceil(others_busy - BUSY_SHARE))
    return max(1, min(cores, cores - taken))


@dataclass
class CpuReading:
    """Cumulative CPU seconds: busy on our cores (all processes), and ours alone; and when."""

    busy: float
    own: float
    wall: float


def usable_cores() -> list[int]:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def read_cpu(stat_text: str, cores: list[int], own_seconds: float, wall: float, ticks: int) -> CpuReading:
    """A :class:`CpuReading` from the text of ``/proc/stat``: busy time summed over ``cores``.

    Per-core lines (``cpuN user nice system idle iowait irq softirq steal ...``); idle and
    iowait are free time, steal is time the hypervisor gave elsewhere (not ours to use either
    way), the rest is busy.
    """
    wanted, busy = {f"cpu{core}" for core in cores}, 0
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] in wanted:
            user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[1:8])
            busy += user + nice + system + irq + softirq
    return CpuReading(busy=busy / ticks, own=own_seconds, wall=wall)


def others_busy_cores(before: CpuReading, after: CpuReading) -> float:
    """Cores kept busy by other processes between two readings (never below 0)."""
    elapsed = after.wall - before.wall
    if elapsed <= 0:
        return 0.0
    return max(0.0, (after.busy - before.busy) - (after.own - before.own)) / elapsed


def chosen_thread_count() -> int | None:
    """A thread count the user fixed (see the module docstring), or ``None`` for automatic."""
    if os.environ.get("OMP_NUM_THREADS"):
        return -1  # fixed by the user, keep whatever torch has
    setting = os.environ.get("SEQVAE_NUM_THREADS", "auto").strip().lower()
    if setting in ("", "auto"):
        return None
    if setting == "fixed":
        return -1
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    from .errors import SeqVAEError

    raise SeqVAEError(f"SEQVAE_NUM_THREADS must be 'auto', 'fixed' or a positive whole number, got {setting!r}")


class ThreadGovernor:
    """Sets torch's thread count to the free cores, at most every ``interval`` seconds.

    ``tick()`` is cheap (a clock read) until the interval has passed; then it compares CPU
    counters with the previous check and changes the thread count if the free cores changed.
    ``read`` and ``set_threads`` can be replaced (tests).
    """

    def __init__(self, interval: float = CHECK_SECONDS, read=None, set_threads=None, cores: list[int] | None = None):
        self.interval = interval
        self.cores = cores if cores is not None else usable_cores()
        self.read = read or self._read_proc
        self.set_threads = set_threads or _set_torch_threads
        self.last: CpuReading | None = None
        self.next_check = 0.0
        self.threads: int | None = None
        self.enabled = Path("/proc/stat").is_file() if read is None else True

    def _read_proc(self) -> CpuReading:
        times = os.times()
        text = Path("/proc/stat").read_text()
        return read_cpu(text, self.cores, times.user + times.system, time.monotonic(), os.sysconf("SC_CLK_TCK"))

    def tick(self) -> int | None:
        """Re-check when due; the thread count now in force (``None`` before the first decision)."""
        if not self.enabled or time.monotonic() < self.next_check:
            return self.threads
        reading = self.read()
        elapsed = None if self.last is None else reading.wall - self.last.wall
        # a long pause (a notebook between calls) says nothing about the cores now: start anew
        if elapsed is not None and self.interval / 2 <= elapsed <= STALE_CHECKS * self.interval:
            threads = threads_for(len(self.cores), others_busy_cores(self.last, reading))
            if threads != self.threads:
                self.set_threads(threads)
                if self.threads is not None or threads != len(self.cores):
                    logger.info(
                        "%d of %d cores busy with other work: torch uses %d thread(s)",
                        len(self.cores) - threads, len(self.cores), threads,
                    )
                self.threads = threads
        self.last = reading
        self.next_check = time.monotonic() + self.interval
        return self.threads


def _set_torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


_governor: ThreadGovernor | None = None


def adapt_threads() -> int | None:
    """Called often from training steps and generation loops: keep torch's thread count at the
    free cores (see the module docstring). Returns the count in force, ``None`` if not managed."""
    global _governor
    if _governor is None:
        fixed = chosen_thread_count()
        if fixed is not None:
            if fixed > 0:
                _set_torch_threads(fixed)
            _governor = ThreadGovernor()
            _governor.enabled = False
            _governor.threads = fixed if fixed > 0 else None
        else:
            _governor = ThreadGovernor()
    return _governor.tick()
