"""Estimated wait time (EWT) per queue and per caller, recomputed while the caller waits.

The IVR picks a message by EWT band ("less than two minutes"...) and the ACD announces it, so the figure
must be cheap to recompute at every announcement and steady enough not to jump between bands. The
estimator is pure and incremental: fed with events (a call answered after waiting W seconds, a call
handled in H seconds), asked with the clock passed in (monotonic seconds, never read here), O(1) per call.

Two sources are blended:

* the queueing model: a caller at ``position`` with ``available`` free eligible agents and ``eligible``
  eligible agents in all (agents having the queue's skills) waits
  ``max(0, position - available) x AHT / eligible`` — the free agents take the first callers at once,
  then each further place costs one handle time shared among the agents (the M/M/N drain rate). AHT is
  learnt per queue with an exponentially weighted moving average starting from a prior that counts as
  ``prior_weight`` calls, so a new queue learns fast from its first calls and then follows slow changes;
* the recent average wait of the queue's answered calls, each weighted by ``0.5 ** (age / half_life)``
  so that stale figures fade; it reflects what the model cannot see (wrap-up, agents shared with other
  queues) but is blind to the caller's position, so its share grows with its fresh weight ``w`` as
  ``min(w, k) / (min(w, k) + k)`` (``k = trusted_history_calls``) and never exceeds one half.

Rules: 0 when a free eligible agent is there for the caller (no blending: the call is answered now);
the model alone without history; the history alone without eligible agents; ``None`` when there is
neither (no eligible agent and no history left), so the caller hears no figure rather than a made-up one.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from cti.acd.checks import require_finite, require_non_negative, require_positive
from cti.errors import CtiError

# A history whose weight fell below this (one call five half-lives ago) is forgotten.
FORGOTTEN_WEIGHT = 1 / 32


class EwtError(CtiError):
    """An estimate asked or an event fed with values that have no meaning (negative wait, position 0...)."""

    code = "acd.ewt_invalid"


@dataclass(slots=True)
class _QueueStats:
    """What one queue has taught the estimator; the wait sums are decayed up to ``decayed_at``."""

    aht_s: float
    handled: int = 0
    wait_sum: float = 0.0
    wait_weight: float = 0.0
    decayed_at: float = -math.inf


class EwtEstimator:
    """Learns each queue's handle time and recent waits, and estimates the wait of a caller in it."""

    def __init__(
        self,
        *,
        prior_aht_s: float = 300.0,
        prior_weight: float = 1.0,
        aht_alpha: float = 0.2,
        wait_half_life_s: float = 600.0,
        trusted_history_calls: float = 5.0,
    ) -> None:
        require_positive("prior_aht_s", prior_aht_s, EwtError)
        require_non_negative("prior_weight", prior_weight, EwtError)
        require_positive("wait_half_life_s", wait_half_life_s, EwtError)
        require_positive("trusted_history_calls", trusted_history_calls, EwtError)
        if not 0.0 < aht_alpha <= 1.0:
            raise EwtError(f"aht_alpha must be in (0, 1], got {aht_alpha!r}")
        self._prior_aht_s = prior_aht_s
        self._prior_weight = prior_weight
        self._aht_alpha = aht_alpha
        self._half_life_s = wait_half_life_s
        self._trusted_calls = trusted_history_calls
        self._queues: dict[str, _QueueStats] = {}

    def record_answered(self, queue: str, waited_s: float, now: float) -> None:
        """A call of ``queue`` was answered after waiting ``waited_s`` seconds."""
        require_non_negative("waited_s", waited_s, EwtError)
        require_finite("now", now, EwtError)
        stats = self._stats(queue)
        decay = self._decay(stats, now)
        stats.wait_sum = stats.wait_sum * decay + waited_s
        stats.wait_weight = stats.wait_weight * decay + 1.0
        stats.decayed_at = max(now, stats.decayed_at)

    def record_handled(self, queue: str, handle_s: float) -> None:
        """A call of ``queue`` was handled in ``handle_s`` seconds (talk and wrap-up: what blocks the agent)."""
        require_non_negative("handle_s", handle_s, EwtError)
        stats = self._stats(queue)
        stats.handled += 1
        step = max(self._aht_alpha, 1.0 / (stats.handled + self._prior_weight))
        stats.aht_s += step * (handle_s - stats.aht_s)

    def aht(self, queue: str) -> float:
        """Learnt average handle time of ``queue`` in seconds; the prior for a queue never seen."""
        stats = self._queues.get(queue)
        return self._prior_aht_s if stats is None else stats.aht_s

    def recent_wait(self, queue: str, now: float) -> float | None:
        """Time-weighted average wait of the recently answered calls; None once it is all forgotten."""
        require_finite("now", now, EwtError)
        stats = self._queues.get(queue)
        if stats is None or self._decayed_weight(stats, now) < FORGOTTEN_WEIGHT:
            return None
        return stats.wait_sum / stats.wait_weight

    def estimate_queue(
        self,
        queue: str,
        now: float,
        *,
        waiting_ahead: int,
        eligible_agents_busy: int,
        eligible_agents_available: int,
    ) -> float | None:
        """Seconds a caller joining now behind ``waiting_ahead`` callers would wait (see the module rules)."""
        _check_count("waiting_ahead", waiting_ahead)
        _check_count("eligible_agents_busy", eligible_agents_busy)
        _check_count("eligible_agents_available", eligible_agents_available)
        require_finite("now", now, EwtError)
        position = waiting_ahead + 1
        if eligible_agents_available >= position:
            return 0.0
        eligible = eligible_agents_busy + eligible_agents_available
        model = None if eligible == 0 else (position - eligible_agents_available) * self.aht(queue) / eligible
        return self._blend(queue, now, model)

    def estimate_for_position(
        self, queue: str, position: int, eligible_agents: int, now: float, *, available_agents: int = 0
    ) -> float | None:
        """Seconds left for the caller at ``position`` (1 = next answered) of ``queue``.

        ``available_agents`` counts the free ones among ``eligible_agents``; a caller still waiting
        usually has none, hence the default.
        """
        if isinstance(position, bool) or not isinstance(position, int) or position < 1:
            raise EwtError(f"position must be an integer from 1, got {position!r}")
        _check_count("eligible_agents", eligible_agents)
        _check_count("available_agents", available_agents)
        if available_agents > eligible_agents:
            raise EwtError(f"available_agents ({available_agents}) exceeds eligible_agents ({eligible_agents})")
        return self.estimate_queue(
            queue,
            now,
            waiting_ahead=position - 1,
            eligible_agents_busy=eligible_agents - available_agents,
            eligible_agents_available=available_agents,
        )

    def _blend(self, queue: str, now: float, model: float | None) -> float | None:
        history = self.recent_wait(queue, now)
        if model is None or history is None:
            return model if history is None else history
        weight = min(self._decayed_weight(self._queues[queue], now), self._trusted_calls)
        share = weight / (weight + self._trusted_calls)
        return share * history + (1.0 - share) * model

    def _stats(self, queue: str) -> _QueueStats:
        stats = self._queues.get(queue)
        if stats is None:
            stats = self._queues[queue] = _QueueStats(aht_s=self._prior_aht_s)
        return stats

    def _decayed_weight(self, stats: _QueueStats, now: float) -> float:
        return stats.wait_weight * self._decay(stats, now)

    def _decay(self, stats: _QueueStats, now: float) -> float:
        """Factor fading the wait history from its last update to ``now``; a late event fades nothing."""
        elapsed = max(0.0, now - stats.decayed_at)
        return math.pow(0.5, elapsed / self._half_life_s)


def band(seconds: float, bands: Sequence[float]) -> int:
    """Index of the band holding ``seconds``: ``bands`` are increasing upper bounds, the last band is open.

    With ``bands=[60, 180]``: under a minute -> 0, one to three minutes -> 1, three or more -> 2. A
    bound belongs to the band above it, so "less than one minute" is never said of a full minute.
    """
    require_non_negative("seconds", seconds, EwtError)
    for index, bound in enumerate(bands):
        require_non_negative(f"bands[{index}]", bound, EwtError)
    if any(lower >= upper for lower, upper in pairwise(bands)):
        raise EwtError(f"bands must be strictly increasing, got {list(bands)!r}")
    return bisect_right(bands, seconds)








def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EwtError(f"{name} must be a non-negative integer, got {value!r}")
