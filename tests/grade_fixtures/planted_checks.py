"""Self-checks of the planted exercise notebook that tests/test_grade.py grades: real checks, without torch.

They follow unet_tutorial/course/exercises.py's contract: an AssertionError whose message says what is wrong, or
the line ``✓ <name>: all checks passed``. The kernels that run the planted notebooks import this module, so it
stays tiny (no torch: a kernel that imports torch takes seconds to start grading).
"""


def _passed(name: str) -> None:
    print(f"✓ {name}: all checks passed")


def check_double(double) -> None:
    """Exercise 1: ``double(x)`` returns twice its argument."""
    for x in (0, 3, -2.5):
        assert double(x) == 2 * x, f"double({x}) should be {2 * x}, got {double(x)!r}"
    _passed("double")


def check_answer(answer: int) -> None:
    """Exercise 2: the number of pixels of a 6 x 7 image."""
    assert answer == 42, f"you said {answer!r}: a 6 x 7 image has 6 * 7 pixels"
    _passed("answer")


def check_halves(halves) -> None:
    """Exercise 3: ``halves(values)`` splits a list into its first ``len // 2`` items and the rest."""
    got = halves([1, 2, 3, 4, 5])
    assert got == ([1, 2], [3, 4, 5]), f"halves([1, 2, 3, 4, 5]) should be ([1, 2], [3, 4, 5]), got {got!r}"
    _passed("halves")
