"""Developer tooling for the course: the notebook sync gate, exercise copies, the full-mode runner, releases.

Not part of the installed package (learners do not need jupytext or nbformat). Run from the repository root:
``python -m tools.notebooks check|student|run ...`` and ``python -m tools.release notebooks/NN_slug.py ...``.
"""
