"""Notebook 03's exercise 1: ``check_split_by_car`` accepts a split by car and names each planted slip."""

import math
import random

import pytest

from unet_tutorial.course.exercises.split import check_split_by_car


def car_of(image_id):
    return image_id.rsplit("_", 1)[0]


def by_car(image_ids, val_fraction, seed):
    """The right answer: the cars sorted, shuffled by the seed, round(val_fraction * cars) held out."""
    cars = sorted({car_of(i) for i in image_ids})
    random.Random(seed).shuffle(cars)
    val_cars = set(cars[: min(len(cars) - 1, max(1, round(val_fraction * len(cars))))])
    return [i for i in image_ids if car_of(i) not in val_cars], [i for i in image_ids if car_of(i) in val_cars]


def by_image(image_ids, val_fraction, seed):
    ids = sorted(image_ids)
    random.Random(seed).shuffle(ids)
    n_val = round(val_fraction * len(ids))
    return ids[n_val:], ids[:n_val]


def share_of_images(image_ids, val_fraction, seed):
    """Whole cars, but as many as it takes to reach val_fraction of the images."""
    cars = sorted({car_of(i) for i in image_ids})
    random.Random(seed).shuffle(cars)
    val_cars, taken = set(), 0
    for car in cars:
        if taken >= val_fraction * len(image_ids):
            break
        val_cars.add(car)
        taken += sum(car_of(i) == car for i in image_ids)
    return [i for i in image_ids if car_of(i) not in val_cars], [i for i in image_ids if car_of(i) in val_cars]


def rounded_down(image_ids, val_fraction, seed):
    cars = sorted({car_of(i) for i in image_ids})
    random.Random(seed).shuffle(cars)
    val_cars = set(cars[: max(1, int(val_fraction * len(cars)))])
    return [i for i in image_ids if car_of(i) not in val_cars], [i for i in image_ids if car_of(i) in val_cars]


def seed_ignored(image_ids, val_fraction, seed):
    return by_car(image_ids, val_fraction, 0)


def unseeded(image_ids, val_fraction, seed):
    return by_car(image_ids, val_fraction, random.random())


def order_of_arrival(image_ids, val_fraction, seed):
    cars = list(dict.fromkeys(car_of(i) for i in image_ids))  # not sorted: the order the ids came in
    random.Random(seed).shuffle(cars)
    val_cars = set(cars[: min(len(cars) - 1, max(1, round(val_fraction * len(cars))))])
    return [i for i in image_ids if car_of(i) not in val_cars], [i for i in image_ids if car_of(i) in val_cars]


def loses_a_car(image_ids, val_fraction, seed):
    train, val = by_car(image_ids, val_fraction, seed)
    return [i for i in train if not i.startswith("005fffff0000")], val


def held_out(cars, image_ids, n_val, car=car_of):
    val_cars = set(cars[:n_val])
    return [i for i in image_ids if car(i) not in val_cars], [i for i in image_ids if car(i) in val_cars]


def shuffled_cars(image_ids, seed, car=car_of):
    cars = sorted({car(i) for i in image_ids})
    random.Random(seed).shuffle(cars)
    return cars


def rounded_up(image_ids, val_fraction, seed):
    cars = shuffled_cars(image_ids, seed)
    return held_out(cars, image_ids, min(len(cars) - 1, math.ceil(val_fraction * len(cars))))


def swapped(image_ids, val_fraction, seed):
    return by_car(image_ids, val_fraction, seed)[::-1]


def first_underscore(image_ids, val_fraction, seed):
    def car(i):
        return i.split("_")[0]

    cars = shuffled_cars(image_ids, seed, car)
    return held_out(cars, image_ids, min(len(cars) - 1, max(1, round(val_fraction * len(cars)))), car)


def first_12_characters(image_ids, val_fraction, seed):
    def car(i):
        return i[:12]

    cars = shuffled_cars(image_ids, seed, car)
    return held_out(cars, image_ids, min(len(cars) - 1, max(1, round(val_fraction * len(cars)))), car)


def chunks_of_16(image_ids, val_fraction, seed):
    ids = sorted(image_ids)
    chunks = [ids[k : k + 16] for k in range(0, len(ids), 16)]
    random.Random(seed).shuffle(chunks)
    n_val = min(len(chunks) - 1, max(1, round(val_fraction * len(chunks))))
    return [i for chunk in chunks[n_val:] for i in chunk], [i for chunk in chunks[:n_val] for i in chunk]


def shuffles_its_input(image_ids, val_fraction, seed):
    random.Random(seed).shuffle(image_ids)
    return by_car(image_ids, val_fraction, 0)


def forgets_to_return(image_ids, val_fraction, seed):
    by_car(image_ids, val_fraction, seed)


def returns_cars(image_ids, val_fraction, seed):
    train, val = by_car(image_ids, val_fraction, seed)
    return sorted({car_of(i) for i in train}), sorted({car_of(i) for i in val})


def never_none(image_ids, val_fraction, seed):
    cars = shuffled_cars(image_ids, seed)
    return held_out(cars, image_ids, round(val_fraction * len(cars)))


def all_cars(image_ids, val_fraction, seed):
    cars = shuffled_cars(image_ids, seed)
    return held_out(cars, image_ids, max(1, round(val_fraction * len(cars))))


def set_order(image_ids, val_fraction, seed):
    cars = list({car_of(i) for i in image_ids})  # a set's order: the hashes', and the order of insertion
    random.Random(seed).shuffle(cars)
    return held_out(cars, image_ids, min(len(cars) - 1, max(1, round(val_fraction * len(cars)))))


def one_list(image_ids, val_fraction, seed):
    return by_car(image_ids, val_fraction, seed)[1]


def test_a_split_by_car_passes_on_the_checks_ids_and_on_the_runs_own(capsys):
    own = [f"{car}_{view:02d}" for car in ("00087a6bd4dc", "02159e548029", "0cdf5b5d0ce1") for view in range(1, 17)]
    check_split_by_car(by_car, own, 0.35, 7)
    out = capsys.readouterr().out
    assert "your split of this run's images: 32 to train, 16 to validate (1 cars)" in out
    assert "✓ split_by_car: all checks passed" in out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (by_image, "That is a split by image"),
        (rounded_up, r"rounded up \(ceil\)"),
        (swapped, "the sides look swapped: return"),
        (first_underscore, "went to validation, as one car: an image's car is its id before the \\*last\\* '_'"),
        (first_12_characters, "That is a split by image, or a car read wrongly from the ids"),
        (chunks_of_16, "have views on both sides"),
        (shuffles_its_input, "changed the list it was given"),
        (forgets_to_return, "returned None: did you forget to return"),
        (returns_cars, "is a car, not an image id"),
        (never_none, "the validation side is empty: round"),
        (all_cars, "the training side is empty"),
        (share_of_images, "val_fraction was taken as a share of the images: it is a share of the cars"),
        (rounded_down, r"was rounded down \(int\): round it to the nearest whole car"),
        (seed_ignored, "seeds 0 to 5 all gave the same validation cars"),
        (unseeded, r"two calls with seed 0 gave different splits: make a new random.Random\(seed\)"),
        (order_of_arrival, "the same ids in another order gave other validation cars: the order of the cars"),
        (set_order, "nor on a set's order"),
        (loses_a_car, r"4 image\(s\) on neither side, e.g. 005fffff0000_01"),
        (one_list, "returned a list: return two lists"),
        (lambda ids, fraction, seed: 1 / 0, "raised ZeroDivisionError"),
    ],
)
def test_each_slip_is_named_and_no_expected_split_is_shown(answer, message):
    with pytest.raises(AssertionError, match=message) as miss:
        check_split_by_car(answer)
    assert "Expected" not in str(miss.value)


def test_a_split_by_image_of_the_runs_own_ids_is_caught_there_too():
    own = [f"{car}_{view:02d}" for car in ("00087a6bd4dc", "02159e548029") for view in range(1, 17)]

    def by_car_here_only(image_ids, val_fraction, seed):  # right on the check's ids, by image on these
        return (
            by_image(image_ids, val_fraction, seed) if len(image_ids) == 32 else by_car(image_ids, val_fraction, seed)
        )

    with pytest.raises(AssertionError, match="on this run's 32 images .* views on both sides"):
        check_split_by_car(by_car_here_only, own, 0.5, 0)


@pytest.mark.parametrize("ids", [iter(["a_01"]), [], "0cdf5b5d0ce1_01", [1, 2]])
def test_the_runs_ids_must_be_a_list_of_ids(ids):
    with pytest.raises(AssertionError, match="pass the run's image ids, a non-empty list of strings"):
        check_split_by_car(by_car, ids)


def test_other_right_answers_pass_too():
    def by_sample(image_ids, val_fraction, seed):
        cars = sorted({car_of(i) for i in image_ids})
        n_val = min(len(cars) - 1, max(1, round(val_fraction * len(cars))))
        val_cars = set(random.Random(seed).sample(cars, n_val))
        return [i for i in image_ids if car_of(i) not in val_cars], [i for i in image_ids if car_of(i) in val_cars]

    check_split_by_car(by_sample)
    check_split_by_car(lambda ids, fraction, seed: tuple(sorted(side) for side in by_car(ids, fraction, seed)))
