"""Self-check of notebook 03's exercise 1: a split by car, written by hand.

The learner's ``split_by_car(image_ids, val_fraction, seed) -> (train_ids, val_ids)`` must put every view of a
car on the same side, hold out ``val_fraction`` of the *cars* (at least one, never all), give every image exactly
once, and depend on the seed alone, not on the order the ids come in (a folder's listing order is not fixed). The
check runs it on ids of its own, where a split by image, a fraction of images, a lost or doubled image, a seed that
does nothing and an order that matters each give their own answer and are named; then on the run's own images.
Taught in: notebook 03, section 3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from unet_tutorial.course.exercises import call_learner, passed

# 12 cars with 16 views each, and one car with 4 (a car whose other photos were dropped): 196 images
_CARS = [f"{k:03d}a{k * 7919 % 4096:04x}c0de"[:12] for k in range(12)]
_IDS = [f"{car}_{view:02d}" for car in _CARS for view in range(1, 17)]
_IDS += [f"ffffffff0000_{view:02d}" for view in (1, 5, 9, 13)]


def _car(image_id: str) -> str:
    return image_id.rsplit("_", 1)[0]


def _sides(split_by_car: Callable, ids: Sequence[str], fraction: float, seed: int, where: str):
    """The learner's (train, val) on ``ids``, checked for its form: two lists of ids, each image once."""
    result, problem = call_learner(split_by_car, where, list(ids), fraction, seed)
    assert problem is None, problem
    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        f"{where}: split_by_car returned a {type(result).__name__}: return two lists, (train_ids, val_ids)"
    )
    train, val = (list(side) for side in result)
    counts = Counter(train + val)
    doubled = sorted(i for i, n in counts.items() if n > 1)
    missing = sorted(set(ids) - set(counts))
    foreign = sorted(set(counts) - set(ids))
    assert not doubled, f"{where}: {len(doubled)} image(s) on both sides or twice, e.g. {doubled[0]}: give each once"
    assert not missing, f"{where}: {len(missing)} image(s) on neither side, e.g. {missing[0]}: every image goes to one"
    assert not foreign, f"{where}: {foreign[0]} is not one of the ids it was given"
    assert train and val, f"{where}: the {'training' if not train else 'validation'} side is empty"
    return train, val


def _by_car(train: list[str], val: list[str], where: str) -> set[str]:
    """The validation cars, after checking that no car has views on both sides."""
    both = sorted({_car(i) for i in train} & {_car(i) for i in val})
    if both:
        car = both[0]
        n_train, n_val = sum(_car(i) == car for i in train), sum(_car(i) == car for i in val)
        raise AssertionError(
            f"{where}: {len(both)} car(s) have views on both sides (car {car}: {n_train} in train, {n_val} in "
            "validation). That is a split by image: draw the cars, then give every image the side of its car"
        )
    return {_car(i) for i in val}


def check_split_by_car(
    split_by_car: Callable, ids: Sequence[str] | None = None, val_fraction: float = 0.2, seed: int = 0
) -> None:
    """Notebook 03, exercise 1: ``split_by_car`` on the check's 196 ids (13 cars), then, with ``ids``, on the run's
    own images with its ``val_fraction`` and ``seed``. A miss names the slip it recognises."""
    assert callable(split_by_car), f"split_by_car is a {type(split_by_car).__name__}: pass the function itself"
    cars = sorted({_car(i) for i in _IDS})
    for fraction in (0.3, 0.5, 0.01):
        where = f"on 13 cars (196 images) with val_fraction={fraction}"
        train, val = _sides(split_by_car, _IDS, fraction, 0, where)
        held = _by_car(train, val, where)
        wanted = min(len(cars) - 1, max(1, round(fraction * len(cars))))
        if len(held) != wanted:
            if len(held) == int(fraction * len(cars)) and fraction * len(cars) >= 1:
                slip = "val_fraction times the cars was rounded down (int): round it to the nearest whole car"
            elif abs(len(val) - fraction * len(_IDS)) < 16:
                slip = "val_fraction was taken as a share of the images: it is a share of the cars"
            else:
                slip = "hold out round(val_fraction * the number of cars) of them, at least one and never all"
            raise AssertionError(f"{where}: {len(held)} of the 13 cars went to validation: {slip}")
    where = "on 13 cars with val_fraction=0.3"
    first = _by_car(*_sides(split_by_car, _IDS, 0.3, 0, where), where)
    again = _by_car(*_sides(split_by_car, _IDS, 0.3, 0, where + ", called again"), where)
    assert first == again, f"{where}: two calls with seed 0 gave different splits: draw with random.Random(seed)"
    others = {frozenset(_by_car(*_sides(split_by_car, _IDS, 0.3, s, f"{where}, seed {s}"), where)) for s in range(1, 6)}
    assert len(others | {frozenset(first)}) > 1, (
        f"{where}: seeds 0 to 5 all gave the same validation cars: the split must change with the seed "
        "(random.Random(seed))"
    )
    reordered = _by_car(*_sides(split_by_car, _IDS[::-1], 0.3, 0, f"{where}, the ids reversed"), where)
    assert reordered == first, (
        f"{where}: the same ids in reverse order gave other validation cars: sort the cars before shuffling, so "
        "that the split depends on the seed alone (a folder's listing order is not fixed)"
    )
    if ids is not None:
        where = f"on this run's {len(ids)} images (val_fraction={val_fraction}, seed={seed})"
        train, val = _sides(split_by_car, ids, val_fraction, seed, where)
        held = _by_car(train, val, where)
        print(
            f"your split of this run's images: {len(train)} to train, {len(val)} to validate ({len(held)} cars); "
            "no car on both sides"
        )
    passed("split_by_car")
