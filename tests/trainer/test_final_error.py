"""The paper's reported error, one rule for the trainer, the trials table and the analysis."""
import math

from trainer.config import FINAL_EPOCHS, final_error


def test_median_of_the_last_five():
    assert FINAL_EPOCHS == 5
    assert final_error([80, 70, 10, 50, 12, 11, 13]) == 12.0
    assert final_error([60, 40, 30]) == 40.0
    assert final_error([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert final_error([]) is None


def test_a_diverged_epoch_among_the_last_five_makes_it_nan():
    assert math.isnan(final_error([10, 11, float("nan"), 12, 13]))
    assert final_error([float("nan"), 10, 11, 12, 13, 14]) == 12.0
