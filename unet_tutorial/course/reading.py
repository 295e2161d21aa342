"""Readings rendered from the run the reader sees: prose that cannot go stale, and gaps read with their noise.

A notebook never types a number its run produces. A code cell tagged ``reading`` (its code hidden in Jupyter
and on Colab) calls ``reading(f"...")`` with the run's variables, and the Markdown it displays is the text the
reader reads. ``compare`` turns two arms' per-image scores into that text's core: which arm scored higher, by
how much, and whether a gap this size is beyond the noise of this many images (a paired standard error), so a
conclusion is drawn only where it holds. The bar is Student's t (two-sided 95%): about two standard errors when
the noise is counted over many images, more over a few cars (3.2 over 4, 2.4 over 8), whose standard error is
itself a rough estimate. Left out: multiple-comparison corrections, bootstrap intervals.
Taught in: every notebook's readings; the standard error, and why it counts cars, in 03 (section 8).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from textwrap import dedent


def reading(text: str, more: str = "") -> None:
    """Display ``text`` (Markdown, usually an f-string of the run's numbers) as the notebook's prose; ``more``, the
    reasons and caveats behind it, folded under "Why, and what it leaves out" (open it by clicking), so that the
    reading itself stays a verdict and its numbers."""
    from IPython.display import Markdown, display

    folded = f"\n\n<details><summary>Why, and what it leaves out</summary>\n\n{dedent(more).strip()}\n\n</details>"
    display(Markdown(dedent(text).strip() + (folded if more.strip() else "")))


def gaps_table(rows: dict[str, Gap]) -> str:
    """Markdown: one row per question, its gap in short (``Gap.short``) and its verdict, for a reading that
    compares several runs at once."""
    lines = ["| question | gap (A − B) | verdict |", "|---|---|---|"]
    lines += [f"| {question} | {gap.short(named=True)} | {gap.verdict} |" for question, gap in rows.items()]
    return "\n".join(lines)


@dataclass(frozen=True)
class Gap:
    """``a`` minus ``b`` over paired per-image scores: the mean difference and its standard error.

    ``groups`` is the number of independent units the images come from (cars, say) when they were given; the
    standard error then counts units, not images, and a verdict needs two units or more.
    """

    name_a: str
    name_b: str
    difference: float
    standard_error: float
    images: int
    groups: int | None = None
    group_name: str = "groups"
    runs: tuple[Gap, ...] = ()  # a gap pooled over several runs (seeds): each run's own gap, see ``pooled``
    run_name: str = "seeds"

    @property
    def units(self) -> int:
        """What the noise is counted over: the groups when there are any, else the images."""
        return self.images if self.groups is None else self.groups

    @property
    def bar(self) -> float:
        """How many standard errors a gap must exceed to be called clear: ``noise_bar(self.units)``."""
        return noise_bar(self.units)

    @property
    def clear(self) -> bool:
        """Beyond noise: the gap is more than ``bar`` standard errors (and measured on two units or more)."""
        return self.units > 1 and abs(self.difference) > self.bar * self.standard_error

    @property
    def smallest_clear(self) -> float:
        """The smallest gap that would clear the bar at this noise: with these units, a smaller true gap cannot be
        told from noise (infinite with fewer than two units)."""
        return self.bar * self.standard_error if self.units > 1 else math.inf

    @property
    def ratio(self) -> float:
        """How many standard errors the gap is (infinite when the noise is 0)."""
        return abs(self.difference) / self.standard_error if self.standard_error else math.inf

    @property
    def near(self) -> bool:
        """Within a quarter of the bar either way (``NEAR``): another seed or machine can land on the other side."""
        if self.units < 2 or not self.standard_error:
            return False
        return NEAR[0] * self.bar < self.ratio < NEAR[1] * self.bar

    @property
    def held_in(self) -> int:
        """Of the pooled ``runs``, how many had the gap clear and the same way as the pooled mean."""
        return sum(run.clear and (run.difference > 0) == (self.difference > 0) for run in self.runs)

    @property
    def held(self) -> bool:
        """Clear, and for a gap pooled over runs clear the same way in every run: pooling shrinks training's noise
        without counting it, so a pooled gap holds only where each run's does (``agreement``)."""
        return self.clear and self.held_in == len(self.runs)

    @property
    def verdict(self) -> str:
        """The reading in a few words, for a table: "clear" or "within the noise", "close to the bar" when near;
        a pooled gap that is clear but not clear the same way in every run says so."""
        if self.units < 2:
            return "no noise estimate (one unit)"
        word = "clear" if self.clear else "within the noise"
        if self.clear and not self.held:
            word = f"clear pooled, not held: clear in {self.held_in} of {len(self.runs)} {self.run_name}"
        return f"{word}, close to the bar" if self.near else word

    def pooled(self, runs: Sequence[Gap], run_name: str = "seeds") -> Gap:
        """This gap, measured over the images of several runs together, with each run's own gap attached: its
        verdict then says whether it held in every run."""
        return replace(self, runs=tuple(runs), run_name=run_name)

    @property
    def digits(self) -> int:
        """Decimals to print the gap's size in SEs with (the bar always has two): 2 where one would hide or turn which
        is larger ("2.4 SE, bar 2.36" for 2.37) or would say otherwise than ``near`` (1.93 of 2.36 is close to the
        bar; "1.9 of 2.36" reads as not)."""
        shown_ratio, shown_bar = round(self.ratio, 1), round(self.bar, 2)  # the bar always prints to two places
        order_hidden = shown_ratio == shown_bar or (shown_ratio > shown_bar) != (self.ratio > self.bar)
        shown_near = NEAR[0] * shown_bar < shown_ratio < NEAR[1] * shown_bar  # what a reader works out from them
        return 2 if order_hidden or shown_near != self.near else 1

    @property
    def leader(self) -> str:
        return self.name_a if self.difference >= 0 else self.name_b

    @property
    def trailer(self) -> str:
        return self.name_b if self.difference >= 0 else self.name_a

    def sentence(self, metric: str = "Dice") -> str:
        """E.g. "ImageNet scored higher than random by 0.031 Dice (± 0.008 over 64 images): beyond noise"."""
        images = f"{self.images} image{'' if self.images == 1 else 's'}"
        if self.groups is None:
            over = images
        elif self.groups == 1:  # "all of one car": the name's singular, by its plural's s
            over = f"{images}, all of one {self.group_name.removesuffix('s')}"
        else:
            over = f"{self.groups} {self.group_name}, {images}"
        if self.units < 2:
            return f"{self.leader} and {self.trailer} cannot be told apart on {over}"
        if self.difference == 0:  # "a scored higher by 0.000" would name a winner
            where = "all" if self.standard_error == 0 else "average over"
            return f"{self.name_a} and {self.name_b} scored the same on {where} {self.images} images"
        places = _places(self.standard_error)  # the gap to as many places as its noise, so the two can be compared
        noise = f"± {self.standard_error:.{places}f} over {over}"
        few = "images" if self.groups is None else self.group_name
        if round(abs(self.difference), places) == 0:  # "higher by 0.000" would name a winner of nothing
            return (
                f"{self.name_a} and {self.name_b} differ by less than {0.5 * 10**-places:g} {metric} ({noise}): "
                f"with this many {few} the two cannot be told apart"
            )
        size = f"{abs(self.difference):.{places}f} {metric} ({noise})"
        ratio = self.ratio
        digits = self.digits
        against = f"{ratio:.{digits}f} standard errors, {{}} the bar of {self.bar:.2f} for {self.units} {few}"
        close = " (close to it: another run can land on the other side)" if self.near else ""
        if self.clear:
            return f"{self.leader} scored higher than {self.trailer} by {size}: {against.format('beyond')}{close}"
        return (
            f"{self.leader} scored higher than {self.trailer} by {size}: {against.format('within')}{close}, so with "
            f"this many {few} the two cannot be told apart"
        )

    def short(self, metric: str = "Dice", named: bool = False) -> str:
        """The gap in a few words, for a reading that gave its full ``sentence`` once already: "+0.077 Dice ± 0.018
        (4.4 SE, bar 2.2)", signed as ``name_a`` minus ``name_b``; ``named`` puts "a − b: " in front."""
        names = f"{self.name_a} − {self.name_b}: " if named else ""
        if self.units < 2:
            return (
                f"{names}{self.difference:+.3f} {metric}, no noise estimate (one {self.group_name.removesuffix('s')})"
            )
        places = _places(self.standard_error)
        digits = self.digits
        return (
            f"{names}{self.difference:+.{places}f} {metric} ± {self.standard_error:.{places}f} "
            f"({self.ratio:.{digits}f} SE, bar {self.bar:.2f})"
        )


def agreement(gaps: Sequence[Gap], runs: str = "seeds") -> str:
    """How one gap measured in several runs (say, training seeds) agrees, in words: which arm led in how many runs,
    and in how many the lead was clear. A gap holds only when it is clear, the same way, in every run: agreement in
    direction alone is weak (a gap of nothing points the same way in all of three runs one time in four)."""
    if not gaps:
        raise ValueError(f"agreement: no gaps to compare; give one per run ({runs})")
    a, b, n = gaps[0].name_a, gaps[0].name_b, len(gaps)
    if any((gap.name_a, gap.name_b) != (a, b) for gap in gaps):
        raise ValueError(f"agreement: every gap must be {a} minus {b}, as the first; compare the same two arms")
    if n == 1:
        return (
            f"{gaps[0].leader} ahead, {gaps[0].verdict}, in the one {runs.removesuffix('s')}: one run cannot separate "
            "the gap from training's own noise"
        )
    led = {a: [gap for gap in gaps if gap.difference > 0], b: [gap for gap in gaps if gap.difference < 0]}
    if not led[a] and not led[b]:
        return f"{a} and {b} scored the same in all {n} {runs}"
    clear = {name: sum(gap.clear for gap in arm) for name, arm in led.items()}
    for leader in (a, b):
        if len(led[leader]) == n and clear[leader] == n:
            return f"{leader} ahead in all {n} {runs}, clear in each: the gap held"
        if len(led[leader]) == n and clear[leader] == 0:
            return f"{leader} ahead in all {n} {runs}, clear in none: no run could tell the gap from noise"
        if len(led[leader]) == n:
            return (
                f"{leader} ahead in all {n} {runs}, beyond the noise in {clear[leader]} of them: the same direction "
                "each time, but not clear each time"
            )
    if not clear[a] and not clear[b]:
        return (
            f"{a} ahead in {len(led[a])} of {n} {runs}, {b} in {len(led[b])}, and none clear of the noise: the "
            f"{runs} disagree on a gap none of them could measure, so which way it goes is open"
        )
    cleared = ", ".join(f"{clear[name]} for {name}" for name in (a, b))
    return (
        f"{a} ahead in {len(led[a])} of {n} {runs}, {b} in {len(led[b])} (beyond the noise: {cleared}): the {runs} "
        "disagree, so training's own noise is as large as the gap, and which way it goes is open"
    )


# Student's t, two-sided 95% (the 0.975 quantile), for 1 to 30 degrees of freedom, to four decimals (a table rounded
# to three and printed to two would round twice: 2.3646 for 7 degrees of freedom is 2.36, not 2.37)
NEAR = (0.8, 1.25)  # a gap between these multiples of its bar is read as close to it, whichever side it falls

# fmt: off
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604, 2.1448,
    2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484,
    2.0452, 2.0423,
)
# fmt: on


def findings_table(findings: dict[str, Gap]) -> str:
    """The gaps a run measured, one line each: the gap, its standard error, how many standard errors, the bar, the
    verdict. ``findings`` maps each question (say "threshold 0.35 - 0.5 (10)") to its ``Gap``."""
    width = max([len("question (section)"), *map(len, findings)]) + 1  # an empty table is its header
    lines = [f"{'question (section)':<{width}} {'gap':>8} {'± SE':>7} {'SEs':>5} {'bar':>5}  verdict"]
    for question, gap in findings.items():
        ratio = gap.ratio if gap.difference else 0.0  # no gap: no standard errors, even when the noise is 0
        digits = gap.digits if gap.difference else 1
        lines.append(
            f"{question:<{width}} {gap.difference:+8.4f} {gap.standard_error:7.4f} {ratio:5.{digits}f} "
            f"{gap.bar:5.2f}  {gap.verdict}"
        )
    return "\n".join(lines)


def findings_summary(findings: dict[str, Gap]) -> str:
    """Markdown: which of the questions (their section numbers dropped) this run answered beyond its noise."""

    def listed(questions: list[str]) -> str:
        return "; ".join(
            question.rsplit(" (", 1)[0].rstrip("?") + (" (close to the bar)" if findings[question].near else "")
            for question in questions
        )

    beyond = [question for question, gap in findings.items() if gap.held]
    within = [question for question, gap in findings.items() if not gap.clear]
    not_held = [question for question, gap in findings.items() if gap.clear and not gap.held]
    close = (
        " A gap close to its bar can land on the other side in another run."
        if any(gap.near for gap in findings.values())
        else ""
    )
    return (
        f"**Beyond the noise in your run**: {listed(beyond) or 'none of these gaps'}. **Within it**: "
        f"{listed(within) or 'none'}"
        + (": your run cannot tell which way those go." if within else ".")
        + (
            f" **Clear pooled, not in every run**: {listed(not_held)}: training's own noise is as large as these."
            if not_held
            else ""
        )
        + close
    )


def noise_bar(units: int) -> float:
    """The multiple of a standard error, measured over ``units`` independent units, that a gap must exceed.

    Student's t at two-sided 95% with ``units - 1`` degrees of freedom: 12.7 for 2 units, 3.2 for 4, 2.4 for 8,
    2.04 for 31 and 1.96 in the limit (beyond the table, the first terms of its Cornish-Fisher expansion).
    Infinite below 2 units, where there is no standard error.
    """
    df = units - 1
    if df < 1:
        return math.inf
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def _places(value: float) -> int:
    """Decimal places for a standard error: two significant digits, at least three places, so that a gap printed
    to as many places can be checked against its bar ("0.0025 (± 0.0010)", not "0.003 (± 0.001)")."""
    if not math.isfinite(value) or value == 0:
        return 3
    return min(8, max(3, 1 - math.floor(math.log10(value))))


def compare(
    name_a: str,
    scores_a: Sequence[float],
    name_b: str,
    scores_b: Sequence[float],
    *,
    groups: Sequence[object] | None = None,
    group_name: str = "groups",
) -> Gap:
    """The paired gap between two arms scored on the same images (``scores_a[i]`` and ``scores_b[i]``: image i).

    The standard error is that of the mean of the per-image differences, ``std(d) / sqrt(n)``: pairing removes
    what makes one image hard for both arms, so it is smaller than comparing the two means as if unrelated.
    Images that come in groups (the 16 views of a car) are not independent: pass ``groups`` (one label per image,
    e.g. its car) and ``group_name`` ("cars"), and the standard error is the cluster-robust one, counted over the
    groups, which is larger and honest. The gap itself stays the mean over images.
    """
    if len(scores_a) != len(scores_b):
        raise ValueError(f"compare: {name_a} has {len(scores_a)} scores and {name_b} {len(scores_b)}; pair them")
    if groups is not None and len(groups) != len(scores_a):
        raise ValueError(f"compare: {len(groups)} group labels for {len(scores_a)} scores; give one per image")
    for name, scores in ((name_a, scores_a), (name_b, scores_b)):  # a NaN would read "B scored higher by nan"
        if bad := [(i, float(s)) for i, s in enumerate(scores, 1) if not math.isfinite(float(s))]:
            images = ", ".join(str(i) for i, _ in bad)
            raise ValueError(
                f"compare: image{'s' if len(bad) > 1 else ''} {images} of {name} scored {bad[0][1]}, not finite; "
                "score every image (e.g. Dice of an empty mask predicted empty is 1), or leave those images out "
                "of both arms"
            )
    diffs = [float(a) - float(b) for a, b in zip(scores_a, scores_b)]
    n = len(diffs)
    if n == 0:
        raise ValueError(f"compare: no scores for {name_a} and {name_b}")
    mean = sum(diffs) / n
    if groups is None:
        spread = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else math.inf
        return Gap(name_a, name_b, mean, spread / math.sqrt(n), n)
    sums: dict[object, float] = {}  # each group's summed deviation from the mean
    for label, d in zip(groups, diffs):
        sums[label] = sums.get(label, 0.0) + d - mean
    g = len(sums)
    error = math.sqrt(g / (g - 1) * sum(s**2 for s in sums.values())) / n if g > 1 else math.inf
    return Gap(name_a, name_b, mean, error, n, g, group_name)
