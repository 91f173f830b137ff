"""The thread governor: how many threads for how busy the cores are, from /proc/stat readings."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqvae import threads
from seqvae.errors import SeqVAEError
from seqvae.threads import CpuReading, ThreadGovernor, others_busy_cores, read_cpu, threads_for

STAT = """cpu  900 0 300 5000 10 0 0 0 0 0
cpu0 400 0 100 2500 5 0 0 7 0 0
cpu1 500 0 200 2500 5 3 2 0 0 0
intr 123
"""


@pytest.mark.parametrize(
    "cores, others, expected",
    [
        (2, 0.0, 2),  # idle machine: every core
        (2, 0.2, 2),  # background noise under a quarter core
        (2, 0.3, 1),  # a competitor at 30% already costs barrier waits
        (2, 0.67, 1),  # a busy loop sharing with our two threads
        (2, 1.0, 1),
        (2, 2.0, 1),  # everything taken: still one thread
        (8, 3.0, 5),
        (8, 2.26, 5),
        (1, 0.9, 1),
    ],
)
def test_threads_for_leaves_the_busy_cores(cores, others, expected):
    assert threads_for(cores, others) == expected


def test_read_cpu_sums_busy_time_of_our_cores_only():
    # cpu0: user 400 + system 100 (steal 7 and idle not counted); cpu1: 500 + 200 + irq 3 + softirq 2
    assert read_cpu(STAT, [0], 1.5, 10.0, ticks=100).busy == pytest.approx(5.0)
    assert read_cpu(STAT, [1], 1.5, 10.0, ticks=100).busy == pytest.approx(7.05)
    both = read_cpu(STAT, [0, 1], 1.5, 10.0, ticks=100)
    assert (both.busy, both.own, both.wall) == (pytest.approx(12.05), 1.5, 10.0)


def test_others_busy_is_total_busy_minus_our_own_time():
    before, after = CpuReading(busy=10.0, own=4.0, wall=100.0), CpuReading(busy=13.0, own=5.0, wall=102.0)
    assert others_busy_cores(before, after) == pytest.approx(1.0)  # (3 - 1) s over 2 s
    # accounting granularity can make our own time exceed the total: never negative
    assert others_busy_cores(before, CpuReading(busy=10.5, own=5.0, wall=101.0)) == 0.0


class FakeCpu:
    """Readings a test scripts: others busy at ``others`` cores, us at ``own_rate`` cores."""

    def __init__(self):
        self.busy = self.own = 0.0
        self.wall = 1000.0
        self.others, self.own_rate = 0.0, 1.0

    def advance(self, seconds: float):
        self.wall += seconds
        self.busy += (self.others + self.own_rate) * seconds
        self.own += self.own_rate * seconds

    def __call__(self) -> CpuReading:
        return CpuReading(self.busy, self.own, self.wall)


class FakeTorch:
    """torch's thread count, as the governor sees it; ``sets`` lists every change."""

    def __init__(self, count: int):
        self.count, self.sets = count, []

    def set(self, count: int):
        self.count = count
        self.sets.append(count)

    def get(self) -> int:
        return self.count


@pytest.fixture
def governed(monkeypatch):
    """(governor, fake CPU, fake torch, run_for(seconds)) on a scripted clock, 2 cores, 2 threads."""

    def make(cores=(0, 1), torch_count=2):
        clock, cpu, torch_threads = [0.0], FakeCpu(), FakeTorch(torch_count)
        monkeypatch.setattr(threads.time, "monotonic", lambda: clock[0])
        governor = ThreadGovernor(interval=1.0, read=cpu, set_threads=torch_threads.set, get_threads=torch_threads.get,
                                  cores=list(cores))

        def run_for(seconds: float, step: float = 0.1):
            for _ in range(round(seconds / step)):
                clock[0] += step
                cpu.advance(step)
                governor.tick()

        governor.tick()  # the first reading: nothing to compare with yet
        return governor, cpu, torch_threads, run_for

    return make


def test_governor_gives_a_core_up_at_once_and_takes_it_back_after_two_checks(governed):
    governor, cpu, torch_threads, run_for = governed()
    run_for(1.5)
    assert torch_threads.sets == []  # idle: torch's own count stays
    cpu.others = 0.7  # a busy loop starts
    run_for(2.05)
    assert torch_threads.sets == [1]
    cpu.others = 1.0
    run_for(3)
    assert torch_threads.sets == [1]  # set once, not at every check
    cpu.others = 0.0  # it stops
    run_for(1.05)
    assert torch_threads.sets == [1]  # one free reading is not enough
    run_for(1.0)
    assert torch_threads.sets == [1, 2] and governor.threads == 2


def test_governor_does_not_flip_with_a_load_near_the_threshold(governed):
    governor, cpu, torch_threads, run_for = governed()
    for others in [0.4, 0.1, 0.4, 0.1, 0.4, 0.1, 0.4]:  # a core taken, free, taken...
        cpu.others = others
        run_for(1.0)
    assert torch_threads.sets == [1]


def test_governor_never_exceeds_torchs_own_count(governed):
    # 16 logical CPUs, torch chose 8 threads (physical cores): an idle machine keeps 8
    governor, cpu, torch_threads, run_for = governed(cores=range(16), torch_count=8)
    run_for(5)
    assert torch_threads.sets == []
    cpu.others = 10.0
    run_for(2.05)
    assert torch_threads.sets == [6]  # 16 - 10 free
    cpu.others = 0.0
    run_for(3)
    assert torch_threads.sets == [6, 8]


def test_a_long_pause_starts_anew_but_a_long_training_step_counts(governed):
    governor, cpu, torch_threads, run_for = governed()
    run_for(1.0)
    # a minute in which this process slept and others were busy, then nothing: stale
    cpu.others, cpu.own_rate = 1.0, 0.0
    run_for(60, step=60)
    assert torch_threads.sets == []
    # a 20 s step of our own work with a competitor beside it: that is the case to act on
    cpu.others, cpu.own_rate = 0.7, 1.3
    run_for(20, step=20)
    assert torch_threads.sets == [1]


def test_a_thread_count_set_elsewhere_is_left_alone(governed, caplog):
    governor, cpu, torch_threads, run_for = governed()
    torch_threads.count = 3  # the user called torch.set_num_threads(3)
    cpu.others = 1.0
    with caplog.at_level("INFO", logger="seqvae.threads"):
        run_for(3)
    assert torch_threads.sets == [] and governor.enabled is False
    assert any("set to 3 elsewhere" in record.getMessage() for record in caplog.records)


def test_a_thread_count_the_user_chose_is_kept(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("SEQVAE_NUM_THREADS", "auto")
    assert threads.chosen_thread_count() is None
    monkeypatch.setenv("SEQVAE_NUM_THREADS", "3")
    assert threads.chosen_thread_count() == 3
    monkeypatch.setenv("SEQVAE_NUM_THREADS", "fixed")
    assert threads.chosen_thread_count() == -1
    monkeypatch.setenv("SEQVAE_NUM_THREADS", "auto")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torchrun, or the user
    assert threads.chosen_thread_count() == -1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    assert threads.chosen_thread_count() == -1
    monkeypatch.delenv("MKL_NUM_THREADS")
    monkeypatch.setenv("SEQVAE_NUM_THREADS", "many")
    with pytest.raises(SeqVAEError, match="SEQVAE_NUM_THREADS must be 'auto', 'fixed' or a positive whole number, got 'many'"):
        threads.chosen_thread_count()


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="reads /proc/stat (Linux)")
@pytest.mark.skipif(len(threads.usable_cores()) < 2, reason="needs 2 cores: one for the busy loop, one left")
def test_a_real_busy_loop_takes_one_core_from_the_count():
    count = FakeTorch(len(threads.usable_cores()))
    governor = ThreadGovernor(interval=0.5, set_threads=count.set, get_threads=count.get)
    governor.enabled = True
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start
        governor.tick()
        time.sleep(1.0)  # this process sleeps: the busy loop runs on a core of its own
        governor.tick()
    finally:
        competitor.kill()
        competitor.wait()
    assert len(count.sets) == 1 and count.sets[0] <= len(governor.cores) - 1  # at least its core given up


def test_training_and_sampling_consult_the_governor(monkeypatch, tiny_csv, make_overrides, tmp_path):
    import seqvae.generation
    import seqvae.training
    from seqvae.pipeline import load
    from seqvae.training import train_model

    calls = {"training": 0, "generation": 0}

    def counter(name):
        def count():
            calls[name] += 1
        return count

    monkeypatch.setattr(seqvae.training, "adapt_threads", counter("training"))
    monkeypatch.setattr(seqvae.generation, "adapt_threads", counter("generation"))
    train_model(None, make_overrides(tiny_csv, max_steps=5), tmp_path / "run")
    assert calls["training"] == 5  # once per optimiser step
    load(tmp_path / "run").sample(4, seed=0, max_length=6)
    assert calls["generation"] >= 1  # every decoding step


def test_a_fixed_count_is_set_once(monkeypatch):
    sets = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("SEQVAE_NUM_THREADS", "1")
    monkeypatch.setattr(threads, "_governor", None)
    monkeypatch.setattr(threads, "_set_torch_threads", sets.append)
    for _ in range(3):
        assert threads.adapt_threads() is None  # fixed: not managed
    assert sets == [1]
