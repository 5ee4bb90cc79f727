"""The journal prune's pacing: a fixed share of the time when the database is quiet, less while a vacuum of the
message table runs or while batches are much slower than usual, and never a standstill."""

from __future__ import annotations

import pytest

from app.services.journal_prune import BUSY_SLOWDOWN, MAX_PAUSE_S, VACUUM_SLOWDOWN, Pacer


def test_a_quiet_database_gets_a_pause_of_the_ratio_times_the_batch():
    pacer = Pacer(ratio=8.0)
    assert [pacer.pause_s(0.002, vacuuming=False) for _ in range(3)] == pytest.approx([0.016] * 3)


def test_a_running_vacuum_of_the_message_table_makes_the_pause_longer():
    pacer = Pacer(ratio=8.0)
    pacer.pause_s(0.002, vacuuming=False)
    assert pacer.pause_s(0.002, vacuuming=True) == pytest.approx(0.016 * VACUUM_SLOWDOWN)


def test_a_batch_much_slower_than_the_fastest_recent_one_backs_off_in_proportion():
    pacer = Pacer(ratio=8.0)
    pacer.pause_s(0.002, vacuuming=False)
    slow = 0.002 * (BUSY_SLOWDOWN + 1)  # the database is busy
    # (the fastest batch has crept up 2 % since: the slowdown is a little under BUSY_SLOWDOWN + 1)
    assert pacer.pause_s(slow, vacuuming=False) == pytest.approx(slow * 8.0 * (BUSY_SLOWDOWN + 1), rel=0.03)
    somewhat = 0.002 * 2  # slower, but not busy: only the ratio
    assert pacer.pause_s(somewhat, vacuuming=False) == pytest.approx(somewhat * 8.0)


def test_the_pause_is_bounded_however_busy_the_database():
    pacer = Pacer(ratio=8.0)
    pacer.pause_s(0.001, vacuuming=False)
    assert pacer.pause_s(10.0, vacuuming=True) == MAX_PAUSE_S


def test_an_old_fastest_batch_is_forgotten_so_a_lasting_slower_pace_is_not_taken_for_a_busy_database():
    pacer = Pacer(ratio=8.0)
    pacer.pause_s(0.001, vacuuming=False)
    steady = 0.005  # five times the first batch, for good (say the rows got bigger)
    pauses = [pacer.pause_s(steady, vacuuming=False) for _ in range(100)]
    assert pauses[0] > steady * 8.0  # at first it looks busy
    assert pauses[-1] == pytest.approx(steady * 8.0)  # after a while it is the normal pace again


def test_a_zero_ratio_never_pauses():
    pacer = Pacer(ratio=0.0)
    assert pacer.pause_s(0.5, vacuuming=True) == 0.0
