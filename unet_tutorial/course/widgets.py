"""Interactive explorers with ipywidgets, and plain figures wherever widgets cannot run.

The idea: a slider makes a threshold, an alpha or a sample index something you can feel, but a notebook must
still show a picture in CI, in a script, and in viewers that cannot run widgets (GitHub, nbviewer, HTML
exports). ``interactive_or_static`` does both with one rule:

1. The static figures are always drawn: ``draw(**setting)`` for each dict in ``static``, displayed as normal
   outputs, so every executed notebook carries real pictures.
2. The live widget (sliders bound to ``draw``) is displayed above them only when ipywidgets imports, the code
   runs in an IPython kernel (Jupyter, Colab, VS Code), and smoke mode is off. Its first picture uses the
   first static setting.

Left out: custom layouts and linked widgets; write those with ipywidgets directly.
Taught in: 01 (first use) and the notebooks that explore thresholds and predictions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from matplotlib.figure import Figure

from unet_tutorial.utils import smoke_mode


def _display(obj: Any) -> None:
    """IPython's display inside IPython; a no-op in plain scripts (where closed figures are not shown)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is not None:
        display(obj)


def widgets_available() -> bool:
    """True when ipywidgets imports and we run inside an IPython kernel (a frontend may draw widgets)."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def make_widget(draw: Callable[..., Figure | None], initial: dict[str, Any] | None = None, **controls: Any):
    """An ``ipywidgets.interactive`` box: one control per keyword, bound to ``draw``.

    Args:
        draw: called with one keyword per control; may return a Figure (displayed) or draw with pyplot.
        initial: starting values (e.g. the first static setting) for controls named in it.
        controls: ipywidgets abbreviations, as for ``ipywidgets.interact``: ``(0.0, 1.0, 0.05)`` for a
            slider, a list for a dropdown, a bool for a checkbox, or a widget.

    Returns:
        the ``ipywidgets.interactive`` widget (display it to use it).
    """
    import ipywidgets

    initial = initial or {}

    def redraw(**values: Any) -> None:
        result = draw(**values)
        if isinstance(result, Figure):
            _display(result)

    # The signature gives ipywidgets the starting values, as defaults of keyword-only parameters.
    redraw.__signature__ = inspect.Signature(
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=initial.get(name, inspect.Parameter.empty))
            for name in controls
        ]
    )
    return ipywidgets.interactive(redraw, **controls)


def interactive_or_static(
    draw: Callable[..., Figure | None], static: list[dict[str, Any]], live: bool | None = None, **controls: Any
) -> None:
    """Show ``draw`` with sliders where widgets can run, and always as fixed figures (see the module rule).

    Args:
        draw: a function of the control values that returns a Figure (e.g. from ``unet_tutorial.viz``).
        static: the settings to draw as plain figures, e.g. ``[{"threshold": 0.3}, {"threshold": 0.7}]``;
            each dict gives a value for every control.
        live: force the widget on or off; default: on when ``widgets_available()`` and not smoke mode.
        controls: ipywidgets abbreviations, e.g. ``threshold=(0.0, 1.0, 0.05)``, ``index=(0, 7)``.

    Example::

        interactive_or_static(lambda threshold: show(images, preds=probs > threshold),
                              static=[{"threshold": 0.5}], threshold=(0.05, 0.95, 0.05))
    """
    if not static:
        raise ValueError(
            "interactive_or_static: give at least one static setting, e.g. static=[{'alpha': 0.5}], "
            "so that viewers without widgets still see a picture."
        )
    for setting in static:
        missing = set(controls) - set(setting)
        if missing:
            raise ValueError(
                f"interactive_or_static: the static setting {setting} has no value for "
                f"{sorted(missing)}; give every control a value."
            )
    if live is None:
        live = widgets_available() and not smoke_mode()
    if live:
        _display(make_widget(draw, static[0], **controls))
    for setting in static:
        result = draw(**setting)
        if isinstance(result, Figure):
            _display(result)
