"""A paper's headline claims as data, and the rule that turns our figure into a verdict.

Each system declares its claims next to ``SYSTEM`` (``System(..., claims=(Claim(...), ...))``)
using the summary keys its experiment already writes::

    from paperlab.core.claims import Claim, Threshold, ratio

    Claim(
        id="kl_gmm2",
        text="The Fourier head's KL on the gmm2 toy is lower than the linear head's",
        paper="KL 0.238 -> 0.171 (ratio 0.72)",
        rule=Threshold(ratio("kl_gmm2_fourier_n12", "kl_gmm2_linear"), paper=0.72,
                       tolerance=0.1, null=1.0, better="lower"),
    )

:func:`judge` applies the claims to one run's summary. It is honest by construction: a claim
whose summary key is missing (or ``None``/NaN) is :attr:`Verdict.NOT_MEASURED`, never
reproduced; a claim the quick size cannot measure is not measured in a quick run; and a quick
run is capped at :attr:`Verdict.DIRECTION` unless the claim says its quick size is the paper's.

Noise. A measure may name a summary key holding its 95 % interval (``ci=``, written by the
experiment with :mod:`paperlab.core.stats`): then a figure whose interval holds the value of no
effect is :attr:`Verdict.WITHIN_NOISE`, neither direction nor not reproduced, and
``reproduced`` needs the interval to reach the paper's figure ± tolerance. A measure with no
sampling noise (a FLOPs count, a deterministic simulation) says ``exact=True``; any other figure
without an interval is judged on its point value and the judgement says it has no interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from paperlab.core.results import fmt


class Verdict(str, Enum):
    """How our figure compares with the paper's."""

    REPRODUCED = "reproduced"  # the paper's figure within the stated tolerance
    DIRECTION = "direction"  # same sign or ordering, different size
    WITHIN_NOISE = "within noise"  # the interval holds the value of no effect
    NOT_REPRODUCED = "not reproduced"
    NOT_MEASURED = "not measured"  # key missing, run failed, or not at this size

    def __str__(self) -> str:
        return self.value


class NotMeasured(ValueError):
    """A summary value a rule needs is missing, ``None``, NaN or not a number."""


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def number(summary: Mapping[str, Any], key: str) -> float:
    """``summary[key]`` as a finite-or-infinite float; :class:`NotMeasured` if absent."""
    value = summary.get(key)
    if not _present(value):
        raise NotMeasured(f"no {key} in the summary")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NotMeasured(f"{key} is {type(value).__name__}, not a number")
    return float(value)


def _fmt(value: float) -> str:
    if math.isinf(value) or math.isnan(value):
        return str(value)
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


@dataclass(frozen=True)
class Interval:
    """A two-sided interval of a measured figure (see :mod:`paperlab.core.stats`)."""

    lo: float
    hi: float
    level: float
    method: str

    def holds(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def show(self) -> str:
        return f"{self.level:.0%} CI [{_fmt(self.lo)}, {_fmt(self.hi)}], {self.method}"


def interval_of(summary: Mapping[str, Any], key: str) -> Interval | None:
    """The interval ``summary[key]`` (``{"lo", "hi", "level", "method"}``); ``None`` if absent.

    Raises:
        NotMeasured: the value is there but not such an interval (ends missing, not numbers,
            not finite, or ``lo > hi``).
    """
    raw = summary.get(key)
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise NotMeasured(f"{key} is {type(raw).__name__}, not an interval")
    try:
        lo, hi = number(raw, "lo"), number(raw, "hi")
        level = number(raw, "level") if "level" in raw else 0.95
    except NotMeasured as exc:
        raise NotMeasured(f"{key}: {exc}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or not 0 < level < 1:
        raise NotMeasured(f"{key} is not an interval: [{lo}, {hi}] at level {level}")
    return Interval(lo, hi, level, str(raw.get("method", "")))


@dataclass(frozen=True)
class Measure:
    """One number computed from summary keys, and how to show it.

    Build with :func:`value`, :func:`ratio`, :func:`difference` or :func:`count`.

    Attributes:
        keys: the summary keys it reads.
        fn: ``fn(summary) -> float``; raises :class:`NotMeasured` when a key is unusable.
        show: ``show(summary, value) -> str``: our figure as a reader sees it.
        ci: the summary key of the figure's interval, on the figure's own scale (optional).
        exact: the figure has no sampling noise (counted FLOPs, a deterministic simulation).
    """

    keys: tuple[str, ...]
    fn: Callable[[Mapping[str, Any]], float]
    show: Callable[[Mapping[str, Any], float], str]
    ci: str | None = None
    exact: bool = False

    def __post_init__(self) -> None:
        if self.ci is not None and self.exact:
            raise ValueError("a measure is either exact or has an interval, not both")

    def __call__(self, summary: Mapping[str, Any]) -> float:
        return self.fn(summary)

    def interval(self, summary: Mapping[str, Any]) -> Interval | None:
        """The figure's interval in ``summary``, or ``None`` (none declared, or not written)."""
        return interval_of(summary, self.ci) if self.ci is not None else None


def value(key: str, unit: str = "", ci: str | None = None, exact: bool = False) -> Measure:
    """The number ``summary[key]`` (``unit`` is appended when shown, e.g. ``"x"``).

    ``ci`` names the summary key of its interval; ``exact`` says it has no sampling noise.
    """
    return Measure((key,), lambda s: number(s, key), lambda s, v: f"{_fmt(v)}{unit}", ci, exact)


def ratio(numerator: str, denominator: str, ci: str | None = None,
          exact: bool = False) -> Measure:
    """``summary[numerator] / summary[denominator]``, shown with both values."""

    def fn(s: Mapping[str, Any]) -> float:
        num, den = number(s, numerator), number(s, denominator)
        if den == 0:
            raise NotMeasured(f"{denominator} is 0")
        return num / den

    def show(s: Mapping[str, Any], v: float) -> str:
        return f"{_fmt(number(s, numerator))} / {_fmt(number(s, denominator))} = {_fmt(v)}"

    return Measure((numerator, denominator), fn, show, ci, exact)


def difference(minuend: str, subtrahend: str, unit: str = "", ci: str | None = None,
               exact: bool = False) -> Measure:
    """``summary[minuend] - summary[subtrahend]``, shown with both values."""

    def show(s: Mapping[str, Any], v: float) -> str:
        return (f"{_fmt(number(s, minuend))} - {_fmt(number(s, subtrahend))} "
                f"= {v:+.3g}{unit}")

    return Measure((minuend, subtrahend),
                   lambda s: number(s, minuend) - number(s, subtrahend), show, ci, exact)


def count(key: str, of: str = "", exact: bool = False) -> Measure:
    """``len(summary[key])`` for a list value (e.g. the data sets where a method won).

    ``of`` names the whole when shown (``"3 of 10 levels"`` for ``of="10 levels"``).
    """

    def fn(s: Mapping[str, Any]) -> float:
        items = s.get(key)
        if items is None:
            raise NotMeasured(f"no {key} in the summary")
        if not isinstance(items, (list, tuple)):
            raise NotMeasured(f"{key} is {type(items).__name__}, not a list")
        return float(len(items))

    def show(s: Mapping[str, Any], v: float) -> str:
        items = ", ".join(str(i) for i in s[key])
        return f"{_fmt(v)}{' of ' + of if of else ''}" + (f" ({items})" if items else "")

    return Measure((key,), fn, show, exact=exact)


def fraction(part: str, whole: str, per: int = 1, ci: str | None = None) -> Measure:
    """``len(summary[part]) / (per * len(summary[whole]))`` for list values.

    E.g. the share of (data set, backbone) pairs a method won: ``part`` lists the pairs won,
    ``whole`` the data sets, ``per`` the backbones per data set.
    """
    if per < 1:
        raise ValueError(f"per must be >= 1, got {per}")

    def items(s: Mapping[str, Any], key: str) -> list[Any]:
        got = s.get(key)
        if not isinstance(got, (list, tuple)):
            raise NotMeasured(f"no list {key} in the summary")
        return list(got)

    def fn(s: Mapping[str, Any]) -> float:
        total = per * len(items(s, whole))
        if total == 0:
            raise NotMeasured(f"{whole} is empty")
        return len(items(s, part)) / total

    def show(s: Mapping[str, Any], v: float) -> str:
        won = items(s, part)
        listed = f" ({', '.join(str(i) for i in won)})" if won else ""
        return f"{len(won)} of {per * len(items(s, whole))} = {_fmt(v)}{listed}"

    return Measure((part, whole), fn, show, ci)


@dataclass(frozen=True)
class Bound:
    """An ordering claim that states no size: reproduced on the paper's side of ``limit``.

    ``reproduced`` if ours is above ``limit`` (``above=True``) or below it, strictly unless
    ``inclusive``; ``not reproduced`` otherwise. There is no ``direction``: the ordering is
    the whole claim. With an interval (the measure's ``ci``), an interval that holds
    ``limit`` is ``within noise`` and otherwise the interval, not the point, decides.
    """

    measure: Measure
    limit: float
    above: bool = True
    inclusive: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return self.measure.keys

    def __call__(self, summary: Mapping[str, Any]) -> Verdict:
        v = self.measure(summary)
        if math.isnan(v):
            raise NotMeasured("the measured value is NaN")
        ci = self.measure.interval(summary)
        if ci is not None:
            if ci.holds(self.limit):
                return Verdict.WITHIN_NOISE
            v = ci.lo if ci.lo > self.limit else ci.hi  # the whole interval is on one side
        if v == self.limit:
            held = self.inclusive
        else:
            held = v > self.limit if self.above else v < self.limit
        return Verdict.REPRODUCED if held else Verdict.NOT_REPRODUCED

    def describe(self) -> str:
        sign = (">" if self.above else "<") + ("=" if self.inclusive else "")
        noise = "; within noise if its interval holds the limit" if self.measure.ci else ""
        return f"reproduced if {sign} {_fmt(self.limit)}; else not reproduced{noise}"


@dataclass(frozen=True)
class Threshold:
    """The usual rule: one measured number against the paper's figure and a null value.

    Without an interval:

    * ``reproduced``: ``|ours - paper| <= tolerance`` (with ``at_least``: ours is at least
      the paper's figure minus the tolerance, on the better side);
    * ``direction``: not that, but ours is strictly on the paper's side of ``null`` (the
      value of no effect: a ratio of 1, a gain of 0);
    * ``not reproduced``: otherwise.

    With an interval (the measure's ``ci``): ``within noise`` when it holds ``null``;
    otherwise ``reproduced`` when it overlaps the paper's figure ± tolerance (with
    ``at_least``: reaches the paper's figure minus the tolerance), else ``direction`` or
    ``not reproduced`` by the side of ``null`` it lies on.

    Attributes:
        measure: the number (see :func:`value`, :func:`ratio`, ...).
        paper: the paper's figure on the same scale.
        tolerance: absolute tolerance, on the same scale (>= 0).
        null: the value that means no effect; ``paper`` must be on its ``better`` side.
        better: ``"higher"`` or ``"lower"``: which side of ``null`` the paper's effect is on.
        at_least: beating the paper's figure also counts as reproduced.
    """

    measure: Measure
    paper: float
    tolerance: float
    null: float
    better: Literal["higher", "lower"] = "higher"
    at_least: bool = False

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower"):
            raise ValueError(f"better must be 'higher' or 'lower', got {self.better!r}")
        if not self.tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")
        if not self._beyond_null(self.paper):
            raise ValueError(f"the paper's figure {self.paper} is not {self.better} than the "
                             f"null value {self.null}")

    @property
    def keys(self) -> tuple[str, ...]:
        return self.measure.keys

    def _beyond_null(self, v: float) -> bool:
        return v > self.null if self.better == "higher" else v < self.null

    def _band(self) -> tuple[float, float]:
        """The figures counted as the paper's: its figure ± tolerance (open on the better
        side with ``at_least``), widened by a rounding slack (0.7 is within 0.1 of 0.8)."""
        slack = 1e-9 * max(1.0, abs(self.paper))
        lo, hi = self.paper - self.tolerance - slack, self.paper + self.tolerance + slack
        if self.at_least:
            return (lo, math.inf) if self.better == "higher" else (-math.inf, hi)
        return lo, hi

    def __call__(self, summary: Mapping[str, Any]) -> Verdict:
        v = self.measure(summary)
        if math.isnan(v):
            raise NotMeasured("the measured value is NaN")
        band_lo, band_hi = self._band()
        ci = self.measure.interval(summary)
        if ci is None:
            near = band_lo <= v <= band_hi
        elif ci.holds(self.null):
            return Verdict.WITHIN_NOISE
        else:
            near = ci.hi >= band_lo and ci.lo <= band_hi
        if near:
            return Verdict.REPRODUCED
        side = v if ci is None else ci.lo  # an interval clear of null lies on one side of it
        return Verdict.DIRECTION if self._beyond_null(side) else Verdict.NOT_REPRODUCED

    def describe(self) -> str:
        sign = ">" if self.better == "higher" else "<"
        if self.at_least:
            edge = self.paper - self.tolerance if self.better == "higher" else (
                self.paper + self.tolerance)
            near = f"{sign}= {_fmt(edge)}"
        else:
            near = f"within ±{_fmt(self.tolerance)} of {_fmt(self.paper)}"
        text = f"reproduced if {near}; direction if {sign} {_fmt(self.null)}"
        if self.measure.ci:
            text += (f"; judged on the 95% interval: within noise if it holds "
                     f"{_fmt(self.null)}, reproduced if it reaches the paper's band")
        return text


Rule = Callable[[Mapping[str, Any]], Verdict]


@dataclass(frozen=True)
class Claim:
    """One headline claim of a paper, and how our summary judges it.

    Attributes:
        id: short identifier, unique within the system (``"iso_power_throughput"``).
        text: the claim in one line.
        paper: the paper's figure as a reader should see it (``"2.35x"``).
        rule: ``rule(summary) -> Verdict``: a :class:`Threshold` or any plain predicate; it
            may raise :class:`NotMeasured` for an unusable value.
        keys: the summary keys the rule reads (default: the rule's own ``keys``); a missing
            one makes the claim not measured before the rule is asked.
        ours: ``ours(summary) -> str``, our figure as shown (default: the rule's measure).
        how: the rule in words (default: ``rule.describe()``).
        quick: whether the quick size measures this claim at all.
        quick_is_paper_size: the quick size is the paper's for this claim, so a quick run may
            call it reproduced (otherwise a quick run is capped at direction).
        ci: the summary key of the figure's 95 % interval (default: the rule's measure's);
            shown beside our figure. A plain predicate that has one reads it itself and
            returns :attr:`Verdict.WITHIN_NOISE` where it holds the value of no effect.
        exact: the figure has no sampling noise (default: the rule's measure's). A claim
            that is neither exact nor has an interval in the run is marked as having none.
    """

    id: str
    text: str
    paper: str
    rule: Rule
    keys: tuple[str, ...] = ()
    ours: Callable[[Mapping[str, Any]], str] | None = None
    how: str = ""
    quick: bool = True
    quick_is_paper_size: bool = False
    ci: str | None = None
    exact: bool = False

    def __post_init__(self) -> None:
        if not self.id or not self.text or not self.paper:
            raise ValueError(f"a claim needs an id, a text and the paper's figure: {self!r}")
        if not callable(self.rule):
            raise TypeError(f"claim {self.id}: rule must be callable, got {self.rule!r}")
        if not self.keys:
            object.__setattr__(self, "keys", tuple(getattr(self.rule, "keys", ())))
        if not self.keys:
            raise ValueError(f"claim {self.id}: name the summary keys it reads (keys=...)")
        if not self.how and hasattr(self.rule, "describe"):
            object.__setattr__(self, "how", self.rule.describe())
        measure = getattr(self.rule, "measure", None)
        if isinstance(measure, Measure):
            if self.ci is None:
                object.__setattr__(self, "ci", measure.ci)
            object.__setattr__(self, "exact", self.exact or measure.exact)
        if self.ci is not None and self.exact:
            raise ValueError(f"claim {self.id}: a figure is either exact or has an interval")

    def interval(self, summary: Mapping[str, Any]) -> Interval | None:
        """The figure's interval in ``summary``, or ``None``."""
        return interval_of(summary, self.ci) if self.ci is not None else None

    def show(self, summary: Mapping[str, Any]) -> str:
        """Our figure, as text (the keys' values when the rule has no measure)."""
        if self.ours is not None:
            return self.ours(summary)
        measure = getattr(self.rule, "measure", None)
        if isinstance(measure, Measure):
            return measure.show(summary, measure(summary))
        return "; ".join(f"{k} = {fmt(summary[k])}" for k in self.keys)


@dataclass(frozen=True)
class Judgement:
    """A claim's verdict on one run.

    Attributes:
        claim: the claim judged.
        verdict: the verdict.
        ours: our figure as text (``"-"`` when not measured).
        reason: why the verdict is what it is, when that is not plain from the figures
            (a missing key, the quick cap, no interval, a failed run); empty otherwise.
        size: ``"quick"`` or ``"full"``.
        interval: our figure's interval, when the run has one.
    """

    claim: Claim
    verdict: Verdict
    ours: str
    reason: str = ""
    size: str = "full"
    interval: Interval | None = None


def judge(claims: Sequence[Claim], summary: Mapping[str, Any] | None,
          quick: bool) -> list[Judgement]:
    """Verdicts of ``claims`` on one run's ``summary`` (``None``: the run produced none).

    Raises:
        TypeError: an entry of ``claims`` is not a :class:`Claim`.
    """
    size = "quick" if quick else "full"
    out = []
    for claim in claims:
        if not isinstance(claim, Claim):
            raise TypeError(f"claims must be Claim(...), got {claim!r}")
        out.append(_judge_one(claim, summary, quick, size))
    return out


def verdicts(claims: Sequence[Claim], summary: Mapping[str, Any] | None,
             quick: bool = False) -> dict[str, Verdict]:
    """``{claim id: verdict}``: :func:`judge` without the figures and reasons."""
    return {j.claim.id: j.verdict for j in judge(claims, summary, quick)}


def _judge_one(claim: Claim, summary: Mapping[str, Any] | None, quick: bool,
               size: str) -> Judgement:
    def unmeasured(reason: str) -> Judgement:
        return Judgement(claim, Verdict.NOT_MEASURED, "-", reason, size)

    if quick and not claim.quick:
        return unmeasured("not measured at the quick size")
    if summary is None:
        return unmeasured("the run produced no summary")
    missing = [k for k in claim.keys if not _present(summary.get(k))]
    if missing:
        return unmeasured(f"no {', '.join(missing)} in the summary")
    try:
        verdict = Verdict(claim.rule(summary))
        ours = claim.show(summary)
        ci = claim.interval(summary)
    except NotMeasured as exc:
        return unmeasured(str(exc))
    reasons = []
    if quick and verdict is Verdict.REPRODUCED and not claim.quick_is_paper_size:
        verdict = Verdict.DIRECTION
        reasons.append("held, but at the quick size")
    if ci is not None:
        ours = f"{ours} ({ci.show()})"
    elif not claim.exact:
        reasons.append("no interval: one run, no paired test")
    return Judgement(claim, verdict, ours, "; ".join(reasons), size, ci)
