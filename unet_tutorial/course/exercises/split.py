"""Self-check of notebook 03's exercise 1: a split by car, written by hand.

The learner's ``split_by_car(image_ids, val_fraction, seed) -> (train_ids, val_ids)`` must put every view of a
car on the same side, hold out ``round(val_fraction * cars)`` of the *cars* (at least one, never all), give every
image exactly once, leave the list it was given as it was, and depend on the seed alone, not on the order the ids
come in (a folder's listing order is not fixed). The check runs it on ids of its own, where each usual slip gives
its own answer and is named: a split by image, a share of the images, a count rounded down or up, a seed that does
nothing, an order that matters (a set's order included), a car taken as the id's first part or its first 12
characters, chunks of 16 ids;
then on the run's own images. Taught in: notebook 03, section 3.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence

from unet_tutorial.course.exercises import call_learner, passed

# 12 cars of 16 views, one of 4 (sorted mid-list: chunks of 16 sorted ids cut it and a neighbour), and one whose
# name is shorter and holds an underscore of its own (the car is the id before the *last* "_"): 14 cars
_CARS = [f"{k:03d}a{k * 7919 % 4096:04x}c0de"[:12] for k in range(12)] + ["lot_a_7"]
_IDS = [f"{car}_{view:02d}" for car in _CARS for view in range(1, 17)]
_IDS += [f"005fffff0000_{view:02d}" for view in (1, 5, 9, 13)]
_MANY = [f"{k:03d}b{k * 4099 % 65536:04x}0000_{view:02d}" for k in range(40) for view in (1, 9)]
# Two cars whose names share the part before their first "_", and two others: 4 cars, one to hold out
_TWINS = ("site_a_7", "site_b_19")
_NAMED = [f"{car}_{view:02d}" for car in (*_TWINS, "0a1b2c3d4e5f", "6a7b8c9d0e1f") for view in range(1, 17)]
# 10 cars, one with 64 views and nine with 4: a share of the images is far from a share of the cars here
_UNEVEN = [f"0000bigcar00_{view:02d}" for view in range(1, 65)]
_UNEVEN += [f"{k:04d}small000_{view:02d}" for k in range(9) for view in (1, 5, 9, 13)]


def _car(image_id: str) -> str:
    return image_id.rsplit("_", 1)[0]


def _sides(split_by_car: Callable, ids: Sequence[str], fraction: float, seed: int, where: str):
    """The learner's (train, val) on ``ids``, checked for its form: two lists of ids, each image once."""
    given = list(ids)
    result, problem = call_learner(split_by_car, where, given, fraction, seed)
    assert problem is None, problem
    assert given == list(ids), (
        f"{where}: split_by_car changed the list it was given (shuffled or sorted it in place?): work on a copy, the "
        "caller's list is theirs"
    )
    assert result is not None, f"{where}: split_by_car returned None: did you forget to return (train_ids, val_ids)?"
    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        f"{where}: split_by_car returned a {type(result).__name__}: return two lists, (train_ids, val_ids)"
    )
    train, val = (list(side) for side in result)
    counts = Counter(train + val)
    foreign = sorted(set(counts) - set(ids))
    if foreign and foreign[0] in {_car(i) for i in ids}:
        raise AssertionError(f"{where}: {foreign[0]!r} is a car, not an image id: return the images of each car")
    assert not foreign, f"{where}: {foreign[0]!r} is not one of the ids it was given"
    doubled = sorted(i for i, n in counts.items() if n > 1)
    missing = sorted(set(ids) - set(counts))
    assert not doubled, f"{where}: {len(doubled)} image(s) on both sides or twice, e.g. {doubled[0]}: give each once"
    assert not missing, f"{where}: {len(missing)} image(s) on neither side, e.g. {missing[0]}: every image goes to one"
    assert val, f"{where}: the validation side is empty: round(val_fraction * cars) can be 0, but hold out at least one"
    assert train, f"{where}: the training side is empty: hold out at most all the cars but one"
    return train, val


def _by_car(train: list[str], val: list[str], where: str) -> set[str]:
    """The validation cars, after checking that no car has views on both sides."""
    both = sorted({_car(i) for i in train} & {_car(i) for i in val})
    if both:
        car = both[0]
        n_train, n_val = sum(_car(i) == car for i in train), sum(_car(i) == car for i in val)
        raise AssertionError(
            f"{where}: {len(both)} car(s) have views on both sides (car {car}: {n_train} in train, {n_val} in "
            "validation). That is a split by image, or a car read wrongly from the ids (an image's car is its id "
            "before the last '_'): draw the cars, then give every image the side of its car"
        )
    return {_car(i) for i in val}


def _count_slip(held: int, train_cars: int, fraction: float, cars: int, uneven: bool) -> str:
    """What a wrong number of validation cars most likely comes from."""
    wanted = min(cars - 1, max(1, round(fraction * cars)))
    if train_cars == wanted:
        return "the sides look swapped: return (train_ids, val_ids), the training side first"
    if uneven:
        return "val_fraction was taken as a share of the images: it is a share of the cars"
    if held == cars:
        return "every car went to validation: hold out at most all but one"
    if held == math.floor(fraction * cars) != wanted:
        return "val_fraction times the cars was rounded down (int): round it to the nearest whole car"
    if held == math.ceil(fraction * cars) != wanted:
        return "val_fraction times the cars was rounded up (ceil): round it to the nearest whole car"
    return "hold out round(val_fraction * the number of cars) of them, at least one and never all"


def _valid_ids(ids) -> list[str]:
    assert isinstance(ids, (list, tuple)) and ids and all(isinstance(i, str) for i in ids), (
        f"check_split_by_car's ids is a {type(ids).__name__}: pass the run's image ids, a non-empty list of strings "
        "such as raw.ids"
    )
    return list(ids)


def check_split_by_car(
    split_by_car: Callable, ids: Sequence[str] | None = None, val_fraction: float = 0.2, seed: int = 0
) -> None:
    """Notebook 03, exercise 1: ``split_by_car`` on the check's own ids (14 cars, then 10 of uneven size), then, with
    ``ids``, on the run's own images with its ``val_fraction`` and ``seed``. A miss names the slip it recognises."""
    assert callable(split_by_car), f"split_by_car is {split_by_car!r}: pass the function itself, split_by_car"
    for image_ids, fraction in ((_UNEVEN, 0.3), (_IDS, 0.35), (_IDS, 0.1), (_IDS, 0.01), (_IDS, 0.97)):
        cars = len({_car(i) for i in image_ids})
        where = f"on {cars} cars ({len(image_ids)} images) with val_fraction={fraction}"
        train, val = _sides(split_by_car, image_ids, fraction, 0, where)
        held = _by_car(train, val, where)
        if len(held) != min(cars - 1, max(1, round(fraction * cars))):
            slip = _count_slip(len(held), len({_car(i) for i in train}), fraction, cars, image_ids is _UNEVEN)
            raise AssertionError(f"{where}: {len(held)} of the {cars} cars went to validation: {slip}")
    for seed in range(6):  # a car read as the id's first part merges the twins, and holds both out together
        where = f"on 4 cars named {_TWINS[0]}, {_TWINS[1]} and two others, val_fraction=0.25, seed {seed}"
        held = _by_car(*_sides(split_by_car, _NAMED, 0.25, seed, where), where)
        assert held != set(_TWINS), (
            f"{where}: both {_TWINS[0]} and {_TWINS[1]} went to validation, as one car: an image's car is its id "
            "before the *last* '_', not the first"
        )
        assert len(held) == 1, f"{where}: {len(held)} of the 4 cars went to validation: round(0.25 * 4) is 1"
    where = "on 14 cars with val_fraction=0.35"
    first = _by_car(*_sides(split_by_car, _IDS, 0.35, 0, where), where)
    again = _by_car(*_sides(split_by_car, _IDS, 0.35, 0, where + ", called again"), where)
    assert first == again, (
        f"{where}: two calls with seed 0 gave different splits: make a new random.Random(seed) inside the function on "
        "every call (not a shared or unseeded generator)"
    )
    others = {
        frozenset(_by_car(*_sides(split_by_car, _IDS, 0.35, s, f"{where}, seed {s}"), where)) for s in range(1, 6)
    }
    assert len(others | {frozenset(first)}) > 1, (
        f"{where}: seeds 0 to 5 all gave the same validation cars: the split must change with the seed"
    )
    # 40 cars, their ids reversed and then shuffled: a set of that many cars almost surely holds two whose hashes
    # collide, and their order in it then moves with the order of insertion, as from one session to the next
    where = "on 40 cars with val_fraction=0.35"
    first = _by_car(*_sides(split_by_car, _MANY, 0.35, 0, where), where)
    for order in range(8):
        shuffled = _MANY[::-1] if order == 0 else random.Random(order).sample(_MANY, len(_MANY))
        reordered = _by_car(*_sides(split_by_car, shuffled, 0.35, 0, f"{where}, the ids in another order"), where)
        assert reordered == first, (
            f"{where}: the same ids in another order gave other validation cars: the order of the cars you draw from "
            "must not depend on the order of the ids (a folder's listing order is not fixed), nor on a set's order "
            "(which changes from one Python session to the next): sort them first"
        )
    if ids is not None:
        ids = _valid_ids(ids)
        cars = len({_car(i) for i in ids})
        where = f"on this run's {len(ids)} images ({cars} cars, val_fraction={val_fraction}, seed={seed})"
        train, val = _sides(split_by_car, ids, val_fraction, seed, where)
        held = _by_car(train, val, where)
        if cars > 1 and len(held) != min(cars - 1, max(1, round(val_fraction * cars))):
            slip = _count_slip(len(held), len({_car(i) for i in train}), val_fraction, cars, False)
            raise AssertionError(f"{where}: {len(held)} of the {cars} cars went to validation: {slip}")
        print(
            f"your split of this run's images: {len(train)} to train, {len(val)} to validate ({len(held)} cars); "
            "no car on both sides"
        )
    passed("split_by_car")
