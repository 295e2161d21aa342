"""The "change one setting, predict, retrain" checks of notebooks 03 and 04: every message, every slip a student
made in a trial of 60 answers, and the right answers in all three readings."""

import numpy as np
import pytest

from unet_tutorial.course.exercises.one_setting import (
    check_one_setting_gap,
    check_one_setting_prediction,
    check_one_setting_verdict,
)
from unet_tutorial.course.reading import compare

CARS = [car for car in "abcde" for _ in range(4)]  # 5 cars of 4 views
REFERENCE = np.linspace(0.6, 0.95, 20)  # section 7's BatchNorm-frozen copy
KEPT = REFERENCE - 0.01  # the copy kept frozen


def gap_of(mine, reference=REFERENCE, **kwargs):
    return compare("yours", mine, "section 7's", reference, **{"groups": CARS, "group_name": "cars", **kwargs})


def test_one_setting_gap_accepts_compare_over_cars_and_names_each_slip(capsys):
    mine = REFERENCE + np.random.default_rng(0).normal(0.0, 0.02, 20)
    check_one_setting_gap(gap_of(mine), mine, REFERENCE, CARS, others={"the copy kept frozen": KEPT})
    assert "one_setting_gap: all checks passed" in capsys.readouterr().out
    slips = {
        "put your run first": (compare("a", REFERENCE, "b", mine, groups=CARS), mine),
        "you compared your run with the copy kept frozen": (gap_of(mine, KEPT), mine),
        "counts its noise over the 20 images": (compare("a", mine, "b", REFERENCE), mine),
        "counts its noise over 20 groups": (compare("a", mine, "b", REFERENCE, groups=range(20)), mine),
        "is a float": (0.01, mine),
        "nothing was changed": (gap_of(REFERENCE), REFERENCE),
        "has shape": (gap_of(mine), np.stack([mine, mine])),  # every epoch's scores
        "pairs 10 images": (compare("a", mine[:10], "b", REFERENCE[:10], groups=CARS[:10]), mine),
        "my_scores are the copy kept frozen's scores": (gap_of(KEPT), KEPT),
        "not finite": (gap_of(mine), np.where(np.arange(20) == 3, np.nan, mine)),
        "my_scores is a dict": (gap_of(mine), {"val_dice_of_each_image": [mine]}),
        "the first scores are yours": (compare("section 7's", mine, "yours", REFERENCE, groups=CARS), mine),
        "in the order of my_scores": (compare("a", mine, "b", REFERENCE, groups=[i % 5 for i in range(20)]), mine),
    }
    for message, (gap, scores) in slips.items():
        with pytest.raises(AssertionError, match=message) as miss:
            check_one_setting_gap(gap, scores, REFERENCE, CARS, others={"the copy kept frozen": KEPT})
        assert 'compare("yours"' not in str(miss.value)  # the expected call only with reveal=True
    with pytest.raises(AssertionError, match="is not the mean of your scores minus those of"):
        check_one_setting_gap(gap_of(mine + 0.3), mine, REFERENCE, CARS)  # scores of another run
    with pytest.raises(AssertionError, match=r"compare\(\"yours\""):
        check_one_setting_gap(gap_of(mine, KEPT), mine, REFERENCE, CARS, others={"kept": KEPT}, reveal=True)


def test_one_setting_verdict_reads_the_bar_and_the_sign(capsys):
    clear_up = gap_of(REFERENCE + 0.05 + np.random.default_rng(1).normal(0.0, 0.005, 20))
    noisy = gap_of(REFERENCE + np.random.default_rng(2).normal(0.0, 0.05, 20))
    assert clear_up.clear and not noisy.clear
    check_one_setting_verdict(" Higher", "lower", clear_up)  # case and spaces forgiven
    out = capsys.readouterr().out
    assert 'you had predicted "lower"' in out and "one_setting_verdict: all checks passed" in out
    check_one_setting_verdict("within the noise", "within the noise", noisy)
    out = capsys.readouterr().out
    assert "as you predicted" in out and "stays within the noise, whatever the true one" in out
    check_one_setting_verdict("within the noise", "higher", noisy, my_reason=" Dice pulls the overlap up. ")
    out = capsys.readouterr().out
    assert 'you had predicted "higher", which this run can neither confirm nor refute' in out
    assert 'Your reason, written before the run: "Dice pulls the overlap up."' in out
    for verdict, prediction, gap, message in (
        ("higher" if noisy.difference > 0 else "lower", "higher", noisy, "reads the sign of the mean difference"),
        ("lower" if noisy.difference > 0 else "higher", "higher", noisy, "the mean difference is not even that way"),
        ("higher", "higher", compare("a", REFERENCE + 0.05, "b", REFERENCE), "counts its noise over images"),
        ("within the noise", "higher", clear_up, "it is beyond the noise. Which way"),
        ("lower", "higher", clear_up, "read the sign again"),
        ("up", "higher", clear_up, "my_verdict is 'up': write one of \"higher\""),
        ("higher", None, clear_up, "my_prediction is None"),
        ("higher", "higher", 0.05, "my_gap is a float"),
    ):
        with pytest.raises(AssertionError, match=message):
            check_one_setting_verdict(verdict, prediction, gap)


def test_one_setting_verdict_on_one_car_says_there_is_no_noise_estimate(capsys):
    one_car = compare("yours", REFERENCE[:4] + 0.01, "section 7's", REFERENCE[:4], groups=CARS[:4], group_name="cars")
    check_one_setting_verdict("within the noise", "lower", one_car)
    out = capsys.readouterr().out
    assert "With one of the cars there is no noise estimate" in out and "inf" not in out


def test_one_setting_prediction_records_a_changed_value_a_reading_and_a_reason(capsys):
    check_one_setting_prediction(1e-3, " Lower", "the encoder moves ten times as far per step", 1e-4)
    out = capsys.readouterr().out
    assert 'MY_LR_ENCODER = 0.001 (LR_ENCODER: 0.0001); you predict "lower"' in out and "all checks passed" in out
    check_one_setting_prediction(0, "within the noise", "BCE alone already scores every pixel", 1.0, notebook="03")
    assert 'MY_DICE_WEIGHT = 0 (LOSS_WEIGHTS["dice"]: 1)' in capsys.readouterr().out
    reason = "a reason of four words"
    for args, message in (
        ((True, "lower", reason, 1e-4), "give it a number"),
        (("1e-3", "lower", reason, 1e-4), "give it a number"),
        ((float("nan"), "lower", reason, 1e-4), "give it a number"),
        ((-1e-3, "lower", reason, 1e-4), "the values that make sense here lie between 1e-07 and 0.1"),
        ((1e-4, "lower", reason, 1e-4), "is LR_ENCODER itself"),
        ((5.0, "lower", reason, 1e-4), "the values that make sense"),
        ((1e-3, ..., reason, 1e-4), "my_prediction is Ellipsis"),
        ((1e-3, "lower", "because", 1e-4), "write one sentence of your own"),
        ((1e-3, "lower", None, 1e-4), "my_reason is None"),
    ):
        with pytest.raises(AssertionError, match=message):
            check_one_setting_prediction(*args)
    with pytest.raises(AssertionError, match=r'is LOSS_WEIGHTS\["dice"\] itself'):
        check_one_setting_prediction(1.0, "lower", reason, 1.0, notebook="03")
    with pytest.raises(ValueError, match="notebook='02'"):
        check_one_setting_prediction(1e-3, "lower", reason, 1e-4, notebook="02")


def test_the_messages_speak_each_notebooks_names():
    mine = REFERENCE + 0.02
    with pytest.raises(
        AssertionError, match=r"the reference \(section 7's training with the recipe's loss\) minus yours"
    ):
        check_one_setting_gap(compare("a", REFERENCE, "b", mine, groups=CARS), mine, REFERENCE, CARS, notebook="03")
    with pytest.raises(AssertionError, match="nothing was changed. Set MY_DICE_WEIGHT"):
        check_one_setting_gap(gap_of(REFERENCE), REFERENCE, REFERENCE, CARS, notebook="03")
    with pytest.raises(AssertionError, match="your run minus the reference"):
        check_one_setting_verdict("lower", "lower", gap_of(REFERENCE + 0.05), notebook="03")


def test_the_first_epoch_is_read_with_its_own_names(capsys):
    """Notebook 04 reads the first unfrozen epoch too: the messages then name my_first_scores, my_first_gap,
    my_first_prediction and my_first_verdict, and taking the last epoch's scores instead is named."""
    first_reference = REFERENCE - 0.05
    mine_last = REFERENCE + np.random.default_rng(3).normal(0.0, 0.02, 20)
    mine_first = first_reference - 0.08 + np.random.default_rng(4).normal(0.0, 0.01, 20)
    first_gap = gap_of(mine_first, first_reference)
    others = {"your copy's last epoch": mine_last, "section 7's copy at its last epoch": REFERENCE}
    check_one_setting_gap(first_gap, mine_first, first_reference, CARS, others=others, epoch="first")
    check_one_setting_verdict("lower", "lower", first_gap, epoch="first")
    out = capsys.readouterr().out
    assert "after the first unfrozen epoch: lower" in out and "as you predicted" in out
    with pytest.raises(AssertionError, match="my_first_scores are your copy's last epoch's scores"):
        check_one_setting_gap(
            gap_of(mine_last, first_reference), mine_last, first_reference, CARS, others=others, epoch="first"
        )
    with pytest.raises(AssertionError, match="you compared your run with section 7's copy at its last epoch"):
        check_one_setting_gap(gap_of(mine_first), mine_first, first_reference, CARS, others=others, epoch="first")
    with pytest.raises(AssertionError, match=r'compare\("yours", my_first_scores, .*reference_first'):
        check_one_setting_gap(gap_of(mine_first), mine_first, first_reference, CARS, epoch="first", reveal=True)
    with pytest.raises(AssertionError, match="my_first_gap counts its noise over the 20 images"):
        check_one_setting_gap(
            compare("a", mine_first, "b", first_reference), mine_first, first_reference, CARS, epoch="first"
        )
    with pytest.raises(AssertionError, match='my_first_verdict says "within the noise"'):
        check_one_setting_verdict("within the noise", "lower", first_gap, epoch="first")
    with pytest.raises(AssertionError, match="my_first_prediction is 'down'"):
        check_one_setting_verdict("lower", "down", first_gap, epoch="first")
    with pytest.raises(ValueError, match="notebook 03's exercise reads the epochs"):
        check_one_setting_verdict("lower", "lower", first_gap, notebook="03", epoch="first")


def test_the_prediction_records_the_first_epoch_where_the_exercise_reads_it(capsys):
    check_one_setting_prediction(
        1e-3, "within the noise", "one rate may wash out the encoder", 1e-4, my_first_prediction="lower"
    )
    out = capsys.readouterr().out
    assert 'you predict "lower" after the first unfrozen epoch, and "within the noise" at the end.' in out
    with pytest.raises(AssertionError, match="my_first_prediction is 'worse'"):
        check_one_setting_prediction(
            1e-3, "lower", "one rate may wash out the encoder", 1e-4, my_first_prediction="worse"
        )
    with pytest.raises(ValueError, match="epoch='first'"):
        check_one_setting_prediction(
            0.0, "lower", "the Dice term steers the outline", 1.0, notebook="03", my_first_prediction="lower"
        )
