"""Notebook 03's exercise 1: ``check_split_by_car`` accepts a split by car and names each planted slip."""

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
    return [i for i in train if not i.startswith("ffff")], val


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
        (by_image, "That is a split by image: draw the cars, then give every image the side of its car"),
        (share_of_images, "val_fraction was taken as a share of the images: it is a share of the cars"),
        (rounded_down, r"was rounded down \(int\): round it to the nearest whole car"),
        (seed_ignored, "seeds 0 to 5 all gave the same validation cars"),
        (unseeded, r"two calls with seed 0 gave different splits: draw with random.Random\(seed\)"),
        (order_of_arrival, "the same ids in reverse order gave other validation cars: sort the cars"),
        (loses_a_car, r"4 image\(s\) on neither side, e.g. ffffffff0000_01"),
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
