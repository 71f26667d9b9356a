"""The shared training loop's learning-rate schedules."""
from __future__ import annotations

import pytest

from trainer.fit import make_optimizer


def test_cosine_schedule_decays_to_five_percent():
    optimizer = make_optimizer("adam", 0.01, "cosine", total_steps=100)
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * (0.05 + 0.95 * 0.5), rel=1e-4)
    assert float(schedule(100)) == pytest.approx(0.0005)
    assert float(make_optimizer("adam", 0.01).learning_rate) == pytest.approx(0.01)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        make_optimizer("adam", 0.01, "step", total_steps=10)
