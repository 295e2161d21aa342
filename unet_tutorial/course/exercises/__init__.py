"""Self-checks for the notebooks' exercises, one module per notebook: ``unet`` (01), ``losses`` (02), ``carvana``
(03), ``transfer`` (04), ``multiclass`` (05).

A check takes the learner's answer, raises AssertionError with a message that diagnoses the mistake (never the
expected value on a first miss), and prints a short success line otherwise. Taught in: the exercise cells of every
notebook (``make student`` stubs the solutions out).
"""

STUB_MESSAGE = "Exercise: replace this line with your solution."  # what a stub raises (tools/notebooks.py writes it)


def passed(name: str) -> None:
    """The line a check prints when every case passed."""
    print(f"✓ {name}: all checks passed")
