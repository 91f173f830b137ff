"""How many threads torch uses: the cores that other processes leave free.

torch starts one OpenMP thread per core. When another process keeps one of them busy, every
parallel operation waits at its barrier for the thread that the scheduler has put aside, and a
small-batch RNN step (dozens of such operations) runs 5-40x slower, not the 2x that sharing the
core fairly would cost (docs/benchmarks.md, "Speed when the cores are shared"). So seqvae
watches how much of its cores other processes use, from ``/proc/stat`` minus its own CPU time,
and sets ``torch.set_num_threads`` to the cores left free, re-checked every
:data:`CHECK_SECONDS` of training or generation. Reading two counters is all a check costs.

The count never exceeds torch's own choice (one thread per physical core), it drops as soon as
a check finds a core taken and rises only after two checks in a row find it free, so a load
near the threshold does not flip it every second. A thread count the user chose is never
changed: ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set (torchrun sets the first),
``SEQVAE_NUM_THREADS=N``, ``SEQVAE_NUM_THREADS=fixed`` to keep torch's own choice, or a
``torch.set_num_threads`` call of one's own (the governor steps aside when the count is not the
one it set). Where ``/proc/stat`` does not exist (macOS, Windows) the governor does nothing.
DataLoader worker processes count as other load (seqvae's recipes use none).
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
# Readings further apart than this many intervals, in which this process hardly ran, span a
# pause (a notebook between calls): they say nothing about the cores now.
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
    """A thread count the user fixed (see the module docstring): ``N``, ``-1`` for "keep torch's",
    or ``None`` for automatic."""
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        return -1  # fixed by the user (or torchrun), keep whatever torch has
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
    ``read``, ``get_threads`` and ``set_threads`` can be replaced (tests).
    """

    def __init__(self, interval: float = CHECK_SECONDS, read=None, set_threads=None, get_threads=None,
                 cores: list[int] | None = None):
        self.interval = interval
        self.cores = cores if cores is not None else usable_cores()
        self.read = read or self._read_proc
        self.set_threads = set_threads or _set_torch_threads
        self.get_threads = get_threads or _torch_threads
        self.most = min(len(self.cores), self.get_threads())  # torch's own choice: physical cores
        self.threads = self.most  # the count in force, as last set (or torch's)
        self.last: CpuReading | None = None
        self.next_check = 0.0
        self.rising = False  # the previous check found more cores free than in use
        self.enabled = Path("/proc/stat").is_file() if read is None else True

    def _read_proc(self) -> CpuReading:
        times = os.times()
        text = Path("/proc/stat").read_text()
        return read_cpu(text, self.cores, times.user + times.system, time.monotonic(), os.sysconf("SC_CLK_TCK"))

    def tick(self) -> int | None:
        """Re-check when due; the thread count now in force (``None`` when not managed)."""
        if not self.enabled:
            return None
        if time.monotonic() < self.next_check:
            return self.threads
        if self.get_threads() != self.threads:  # someone else set it: theirs to keep
            logger.info("torch's thread count was set to %d elsewhere: seqvae leaves it", self.get_threads())
            self.enabled = False
            return None
        reading = self.read()
        if self.last is not None and not self._pause_between(self.last, reading):
            self._decide(threads_for(len(self.cores), others_busy_cores(self.last, reading)))
        self.last = reading
        self.next_check = time.monotonic() + self.interval
        return self.threads

    def _pause_between(self, before: CpuReading, after: CpuReading) -> bool:
        elapsed = after.wall - before.wall
        if elapsed < self.interval / 2:
            return True  # too short to measure
        return elapsed > STALE_CHECKS * self.interval and (after.own - before.own) < 0.5 * elapsed

    def _decide(self, free: int) -> None:
        wanted = min(free, self.most)
        # fewer threads at once (each check with a taken core costs a collapse); more only when
        # two checks in a row agree (a load near the threshold must not flip it every second)
        if wanted > self.threads and not self.rising:
            self.rising = True
            return
        self.rising = False
        if wanted != self.threads:
            logger.info(
                "%d of %d cores busy with other work: torch uses %d thread(s)",
                len(self.cores) - free, len(self.cores), wanted,
            )
            self.set_threads(wanted)
            self.threads = wanted


def _set_torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


_governor: ThreadGovernor | None = None


def adapt_threads() -> int | None:
    """Called often from training steps and generation loops: keep torch's thread count at the
    free cores (see the module docstring). Returns the count in force, ``None`` if not managed."""
    global _governor
    if _governor is None:
        fixed = chosen_thread_count()
        _governor = ThreadGovernor()
        if fixed is not None:
            if fixed > 0:
                _set_torch_threads(fixed)
            _governor.enabled = False
    return _governor.tick()
