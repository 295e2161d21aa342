"""course.reading: paired gaps with their standard error, and the sentence a reading uses."""

import math

import pytest

from unet_tutorial.course.reading import Gap, agreement, compare, findings_summary, findings_table, noise_bar


def test_a_paired_gap_has_the_standard_error_of_the_differences():
    gap = compare("A", [0.9, 0.8, 0.7, 0.6], "B", [0.8, 0.75, 0.6, 0.58])
    diffs = [0.1, 0.05, 0.1, 0.02]
    mean = sum(diffs) / 4
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3) / 2
    assert gap.difference == pytest.approx(mean) and gap.standard_error == pytest.approx(se)
    assert gap.clear and gap.leader == "A"
    assert gap.sentence().startswith(
        "A scored higher than B by 0.068 Dice (± 0.020 over 4 images): 3.4 standard errors, beyond the bar of 3.18 "
        "for 4 images"
    )


def test_a_gap_inside_the_noise_says_so_whichever_arm_leads():
    gap = compare("A", [0.9, 0.5, 0.7], "B", [0.5, 0.9, 0.69])
    assert not gap.clear and gap.leader == "A" and "cannot be told apart" in gap.sentence()
    flipped = compare("A", [0.5, 0.9, 0.69], "B", [0.9, 0.5, 0.7])
    assert flipped.leader == "B" and flipped.sentence().startswith("B scored higher than A")


def test_unpaired_or_empty_scores_are_refused():
    with pytest.raises(ValueError, match="A has 2 scores and B 1; pair them"):
        compare("A", [1, 2], "B", [1])
    with pytest.raises(ValueError, match="no scores"):
        compare("A", [], "B", [])
    assert "cannot be told apart on 1 image" in compare("A", [1.0], "B", [0.0]).sentence()


def test_a_noise_under_a_thousandth_keeps_two_significant_digits_and_the_gap_as_many_places():
    gap = compare("A", [0.90031, 0.80029, 0.7003], "B", [0.9, 0.8, 0.7])
    assert "by 0.0003000 Dice (± 0.0000058 over 3 images)" in gap.sentence()
    assert "0.000 " not in gap.sentence()


def test_a_gap_is_printed_to_the_places_of_its_noise_so_that_the_bar_can_be_checked():
    gap = compare("A", [0.9013, 0.8018, 0.7008], "B", [0.9, 0.8, 0.7])  # a gap of 0.0013, ± 0.00029
    assert "by 0.00130 Dice (± 0.00029 over 3 images)" in gap.sentence()
    assert "4.5 standard errors, beyond the bar of 4.30 for 3 images" in gap.sentence()


def test_grouped_images_count_their_groups_as_the_noise():
    # Two cars of three views each: within a car the gap repeats, so six images carry two cars' evidence
    a = [0.9, 0.9, 0.9, 0.8, 0.8, 0.8]
    b = [0.85, 0.85, 0.85, 0.79, 0.79, 0.79]
    by_image = compare("A", a, "B", b)
    by_car = compare("A", a, "B", b, groups=["c1"] * 3 + ["c2"] * 3, group_name="cars")
    assert by_car.difference == pytest.approx(by_image.difference) == pytest.approx(0.03)
    # equal groups: the cluster-robust error is the standard error of the two car means, 0.02
    assert by_car.standard_error == pytest.approx(0.02) and by_car.standard_error > by_image.standard_error
    assert by_image.clear and not by_car.clear
    assert (
        "(± 0.020 over 2 cars, 6 images): 1.5 standard errors, within the bar of 12.71 for 2 cars, so with this "
        "many cars" in by_car.sentence()
    )
    one_car = compare("A", a[:3], "B", b[:3], groups=["c1"] * 3, group_name="cars")
    assert not one_car.clear and "cannot be told apart on 3 images, all of one car" in one_car.sentence()
    with pytest.raises(ValueError, match="2 group labels for 6 scores"):
        compare("A", a, "B", b, groups=["c1", "c2"])


def test_a_gap_that_rounds_to_zero_names_no_winner():
    gap = compare("A", [0.9, 0.8, 0.7, 0.6], "B", [0.9003, 0.75, 0.75, 0.6])  # a gap of 0.000075, ± 0.020
    assert gap.sentence() == (
        "A and B differ by less than 0.0005 Dice (± 0.020 over 4 images): with this many images the two cannot be "
        "told apart"
    )


def test_the_bar_is_students_t_so_a_few_cars_need_a_larger_gap_than_many_images():
    assert noise_bar(1) == math.inf and noise_bar(4) == pytest.approx(3.1824) and noise_bar(8) == pytest.approx(2.3646)
    assert f"{noise_bar(8):.2f}" == "2.36" and f"{noise_bar(30):.2f}" == "2.05"  # printed to two places: rounded once
    assert (
        noise_bar(31) == pytest.approx(2.0423)
        and noise_bar(32) == pytest.approx(2.040, abs=0.001)
        and noise_bar(65) == pytest.approx(1.998, abs=0.001)
    )
    assert noise_bar(10**6) == pytest.approx(1.96, abs=0.001)
    # four cars, each 2.5 standard errors' worth of gap: clear over 40 images, not over 4 cars
    a = [0.9 + 0.01 * k for k in range(4) for _ in range(10)]
    b = [x - [0.02, 0.0, 0.03, 0.01][i // 10] for i, x in enumerate(a)]  # each car's own gap
    by_image = compare("A", a, "B", b)
    by_car = compare("A", a, "B", b, groups=[k for k in range(4) for _ in range(10)], group_name="cars")
    assert by_image.clear and not by_car.clear and 2 < abs(by_car.difference) / by_car.standard_error < 3.182
    assert "within the bar of 3.18 for 4 cars" in by_car.sentence()
    # the smallest gap these cars could tell from noise: the bar times the standard error, and only just past it
    assert by_car.smallest_clear == pytest.approx(3.182 * by_car.standard_error, rel=1e-3)
    assert abs(by_car.difference) < by_car.smallest_clear
    assert compare("A", [0.9], "B", [0.8], groups=["car"], group_name="cars").smallest_clear == math.inf


def test_a_noise_just_over_a_thousandth_keeps_two_significant_digits():
    # 0.0025 ± 0.0012 is 2.1 standard errors: "0.003 (± 0.001)" would read as 3
    gap = compare("A", [0.0025 + d for d in (0.00208, -0.00208, 0.00208, -0.00208)], "B", [0.0] * 4)
    assert "by 0.0025 Dice (± 0.0012 over 4 images)" in gap.sentence()


def test_a_gap_at_the_bar_is_printed_to_two_places_so_the_order_shows():
    diffs = [0.1, 0.2, 0.3, 0.4]  # mean 0.25, standard error 0.0645: 3.87 standard errors
    assert "3.9 standard errors, beyond the bar of 3.18 for 4 images" in compare("A", diffs, "B", [0.0] * 4).sentence()
    # mean 0.018302 ± 0.0057735 (values m ± 0.01): 3.17 standard errors, a hair under the bar of 3.182
    close = compare("A", [0.018302 + 0.01 * (-1) ** i for i in range(4)], "B", [0.0] * 4)
    assert not close.clear and "3.17 standard errors, within the bar of 3.18 for 4 images" in close.sentence()
    assert close.near and "(close to it: another run can land on the other side)" in close.sentence()
    far = compare("A", [d + 0.1 for d in diffs], "B", [0.0] * 4)  # 5.4 standard errors: past 1.25 times the bar
    assert far.clear and not far.near and "close to it" not in far.sentence()


def test_a_verdict_for_a_table_says_clear_within_or_close_in_a_few_words():
    diffs = [0.1, 0.2, 0.3, 0.4]  # 3.9 standard errors against a bar of 3.2: clear, and within 1.25 times it
    assert compare("A", diffs, "B", [0.0] * 4).verdict == "clear, close to the bar"
    assert compare("A", [d + 0.1 for d in diffs], "B", [0.0] * 4).verdict == "clear"
    assert compare("A", [0.1, -0.1, 0.1, -0.1], "B", [0.0] * 4).verdict == "within the noise"
    one_car = compare("A", diffs, "B", [0.0] * 4, groups=["car"] * 4, group_name="cars")
    assert one_car.verdict == "no noise estimate (one unit)"


def test_a_table_of_findings_lines_up_each_gap_with_its_noise_bar_and_verdict():
    diffs = [0.1, 0.2, 0.3, 0.4]
    findings = {
        "clear one (1)": compare("A", [d + 0.1 for d in diffs], "B", [0.0] * 4),
        "noisy one (2)": compare("A", [0.1, -0.1, 0.1, -0.1], "B", [0.0] * 4),
        "no gap (3)": compare("A", [0.5] * 4, "B", [0.5] * 4),
    }
    lines = findings_table(findings).splitlines()
    assert lines[0].split() == ["question", "(section)", "gap", "±", "SE", "SEs", "bar", "verdict"]
    assert lines[1].startswith("clear one (1)") and lines[1].endswith("clear") and "+0.3500" in lines[1]
    assert lines[2].endswith("within the noise") and lines[3].split()[3:6] == ["+0.0000", "0.0000", "0.0"]
    summary = findings_summary(findings)
    assert summary.startswith("**Beyond the noise in your run**: clear one. **Within it**: noisy one; no gap:")
    assert findings_summary({"clear one (1)": findings["clear one (1)"]}).endswith("**Within it**: none.")
    assert findings_table({}).split() == ["question", "(section)", "gap", "±", "SE", "SEs", "bar", "verdict"]


def test_a_short_form_gives_the_signed_gap_its_noise_and_bar_in_a_few_words():
    diffs = [0.1, 0.2, 0.3, 0.4]  # mean 0.25 ± 0.0645: 3.9 standard errors, bar 3.2 for 4 images
    assert compare("A", diffs, "B", [0.0] * 4).short() == "+0.250 Dice ± 0.065 (3.9 SE, bar 3.18)"
    assert compare("B", [0.0] * 4, "A", diffs).short("IoU").startswith("-0.250 IoU ± 0.065")
    assert compare("A", diffs, "B", [0.0] * 4).short(named=True).startswith("A − B: +0.250 Dice")
    one_car = compare("A", diffs, "B", [0.0] * 4, groups=["car"] * 4, group_name="cars")
    assert one_car.short() == "+0.250 Dice, no noise estimate (one car)"
    # a gap just under its bar: two places, so that "2.2 SE, bar 2.2" cannot hide which is larger
    near = Gap("A", "B", 0.0216, 0.01, images=12, groups=12, group_name="cars")  # 2.16 SE against 2.20
    assert near.short().endswith("(2.16 SE, bar 2.20)") and not near.clear
    assert "2.16  2.20  within the noise" in findings_table({"a near one (1)": near})


def test_agreement_over_runs_holds_only_when_every_run_is_clear_the_same_way():
    clear = compare("A", [0.5, 0.6, 0.7, 0.8], "B", [0.0] * 4)  # A ahead, clear
    within = compare("A", [0.2, -0.1, 0.2, -0.1], "B", [0.0] * 4)  # A ahead, within the noise
    behind = compare("A", [0.0] * 4, "B", [0.5, 0.6, 0.7, 0.8])  # B ahead, clear
    assert agreement([clear, clear, clear]) == "A ahead in all 3 seeds, clear in each: the gap held"
    assert agreement([behind, behind]).startswith("B ahead in all 2 seeds, clear in each")
    assert agreement([clear, within, clear]) == (
        "A ahead in all 3 seeds, beyond the noise in 2 of them: the same direction each time, but not clear each time"
    )
    assert agreement([within, within]).endswith("clear in none: no run could tell the gap from noise")
    split = agreement([clear, behind, within], runs="runs")
    assert split.startswith("A ahead in 2 of 3 runs, B in 1 (beyond the noise: 1 for A, 1 for B)") and "open" in split
    flipped = compare("A", [-0.2, 0.1, -0.2, 0.1], "B", [0.0] * 4)  # B ahead, within the noise
    unmeasured = agreement([within, flipped, within])
    assert "none clear of the noise" in unmeasured and "training's own noise" not in unmeasured  # nothing to blame
    assert agreement([within]) == (
        "A ahead, within the noise, in the one seed: one run cannot separate the gap from training's own noise"
    )
    tie = compare("A", [0.5] * 4, "B", [0.5] * 4)
    assert agreement([tie, tie]) == "A and B scored the same in all 2 seeds"
    with pytest.raises(ValueError, match="no gaps"):
        agreement([])
    with pytest.raises(ValueError, match="A minus B"):
        agreement([clear, compare("C", [0.0] * 4, "B", [0.0] * 4)])


def test_a_gap_close_to_the_bar_is_printed_so_that_a_reader_can_see_it_is():
    """The bar prints to two places; the SEs to two where one place would move the gap across "close to the bar"."""
    near = Gap("A", "B", 1.905 * 0.01, 0.01, 80, 8, "cars")  # 8 cars: bar 2.3646; 1.905 is 0.806 of it, close
    assert near.near and "(1.9 SE, bar 2.36)" in near.short()  # 1.9 of 2.36 reads as close too
    far = Gap("A", "B", 1.88 * 0.01, 0.01, 80, 8, "cars")  # 0.795 of the bar: not close, but "1.9" would read as
    assert not far.near and "(1.88 SE, bar 2.36)" in far.short()
    assert "1.88 standard errors, within the bar of 2.36" in far.sentence()
    assert " 1.88  2.36" in findings_table({"q": far})


def test_a_gap_pooled_over_seeds_holds_only_where_every_seed_is_clear_the_same_way():
    clear = compare("A", [0.5, 0.6, 0.7, 0.8], "B", [0.0] * 4)  # A ahead, clear
    within = compare("A", [0.2, -0.1, 0.2, -0.1], "B", [0.0] * 4)  # A ahead, within the noise
    pooled = compare("A", [0.5, 0.6, 0.7, 0.8] * 2, "B", [0.0] * 8)
    assert pooled.clear and pooled.held and pooled.verdict == "clear"  # no runs attached: held is clear
    every = pooled.pooled([clear, clear, clear])
    assert every.held and every.verdict == "clear" and every.held_in == 3
    some = pooled.pooled([clear, within, clear])
    assert some.clear and not some.held
    assert some.verdict == "clear pooled, not held: clear in 2 of 3 seeds"
    assert some.verdict in findings_table({"pooled (6)": some})
    summary = findings_summary({"pooled (6)": some, "alone (7)": clear})
    assert summary.startswith("**Beyond the noise in your run**: alone. **Within it**: none.")
    assert "**Clear pooled, not in every run**: pooled:" in summary
    assert not compare("A", [0.0] * 4, "B", [0.0] * 4).pooled([within]).held  # not clear: never held


def test_a_reading_folds_its_reasons_and_a_table_lines_up_its_gaps(monkeypatch):
    import IPython.display

    from unet_tutorial.course.reading import gaps_table, reading

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda markdown: shown.append(markdown.data))
    reading("**The verdict.**", more="  The reasons.\n")
    reading("**Only a verdict.**")
    assert shown[0] == (
        "**The verdict.**\n\n<details><summary>Why, and what it leaves out</summary>\n\nThe reasons.\n\n</details>"
    )
    assert shown[1] == "**Only a verdict.**"
    gap = compare("A", [0.5, 0.6, 0.7, 0.8], "B", [0.0] * 4)
    table = gaps_table({"A above B?": gap}).splitlines()
    assert table[0] == "| question | gap (A − B) | verdict |" and table[2].startswith("| A above B? | A − B: +0.650")
    assert table[2].endswith("| clear |")
