"""Self-checks for the notebooks' exercises, one module per notebook: ``unet`` (01), ``losses`` (02), ``carvana``
(03; its split by car in ``split``, its edge-Dice exercise in ``edges``), ``transfer`` (04; its parameter groups
in ``param_groups``), ``multiclass`` (05); ``one_setting`` holds the "change one setting, predict, retrain" checks
of 03 and 04.

A check takes the learner's answer, raises AssertionError with a message that diagnoses the mistake (never the
expected value on a first miss), and prints a short success line otherwise. Taught in: the exercise cells of every
notebook (``make student`` stubs the solutions out). ``miss`` and ``call_learner`` are the helpers of the checks
that run the learner's function on cases of their own.
"""

from collections.abc import Callable

STUB_MESSAGE = "Exercise: replace this line with your solution."  # what a stub raises (tools/notebooks.py writes it)


def passed(name: str) -> None:
    """The line a check prints when every case passed."""
    print(f"✓ {name}: all checks passed")


def miss(message: str, reveal: bool, expected: str, call: str) -> AssertionError:
    """The AssertionError of a miss: the diagnosis, then the expected value only when the learner asked for it."""
    if reveal:
        return AssertionError(f"{message}. Expected: {expected}")
    return AssertionError(f"{message}. Stuck? {call}(..., reveal=True) shows the expected value")


def call_learner(function: Callable, where: str, *args):
    """(function(*args), None), or (None, a miss) where it raised: the check's own cases are data the learner has
    not seen, so the miss says which. A stub's NotImplementedError goes through (the grader reads it)."""
    try:
        return function(*args), None
    except NotImplementedError as error:
        if str(error).startswith(STUB_MESSAGE):  # a stub; torch raises it too, e.g. for 1 - a bool tensor
            raise
        return None, f"{where}: {getattr(function, '__name__', function)!s} raised NotImplementedError: {error}"
    except Exception as error:
        return None, f"{where}: {getattr(function, '__name__', function)!s} raised {type(error).__name__}: {error}"
