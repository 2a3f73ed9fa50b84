"""Service-level objectives and their error budgets, from the activity store.

Three objectives, with defaults a person can change in Settings:

* **answers**: 95 % of answers start (first word on screen) within 5 s;
* **indexing**: 99 % of files index without an internal error (a corrupt
  or protected file is the file's problem, not an error of Docent's);
* **api**: 99.9 % of local API requests succeed (no 5xx).

Each is counted over a rolling window (28 days by default). The error
budget is the share of operations that may miss (5 % of answers); what is
left of it is shown in the Activity panel, ``docent stats`` and ``/health``.

Alerts follow the multi-window, multi-burn-rate recipe of Google's SRE
workbook ("Alerting on SLOs"): the burn rate is how many times faster than
"exactly the budget over the window" errors arrive. A *fast* burn (2 % of
the budget in an hour, or 5 % in six hours, confirmed over the last 5 or
30 minutes so an alert ends soon after the problem does) raises a banner; a
*slow* burn (10 % in three days, confirmed over six hours) is reported. On a
desktop a handful of operations an hour is normal, so an alert also needs at
least :data:`MIN_BAD` misses in its long window: one slow answer is not an
incident.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.core.stores.activity import NS_PER_S, ActivityStore

MIN_BAD = 3


@dataclass(frozen=True)
class Objective:
    """One objective: what share of which operations must be good."""

    name: str
    title: str
    kind: str  # the activity store's operation kind
    target: float
    bad_sql: str  # when an operation of ``kind`` misses
    params: tuple[object, ...] = ()
    unit: str = "operations"


@dataclass(frozen=True)
class BurnRule:
    """Alert when both windows burn faster than the budget fraction allows."""

    severity: str  # fast | slow
    long_s: int
    short_s: int
    budget_fraction: float  # share of the whole window's budget spent in ``long_s``


RULES = (
    BurnRule("fast", 3600, 300, 0.02),
    BurnRule("fast", 6 * 3600, 1800, 0.05),
    BurnRule("slow", 3 * 86400, 6 * 3600, 0.10),
)


@dataclass
class Budget:
    """An objective's standing over its window, and whether it burns fast.

    Attributes:
        total, bad: operations in the window, and those that missed.
        remaining: share of the error budget left (1.0 untouched, 0 spent,
            negative overspent); None with no operations yet.
        burn: burn rate over each alerting window ("1h", "5m", …), None
            where nothing happened.
        alert: "fast", "slow" or None.
    """

    objective: Objective
    window_days: int
    total: int
    bad: int
    remaining: float | None
    burn: dict[str, float | None] = field(default_factory=dict)
    alert: str | None = None
    message: str = ""

    @property
    def compliance(self) -> float | None:
        return None if self.total == 0 else 1 - self.bad / self.total

    def to_json(self) -> dict[str, Any]:
        """For ``docent stats --json`` and ``/health``."""
        return {
            "objective": self.objective.name, "title": self.objective.title, "target": self.objective.target,
            "window_days": self.window_days, "total": self.total, "bad": self.bad,
            "compliance": None if self.compliance is None else round(self.compliance, 5),
            "budget_remaining": None if self.remaining is None else round(self.remaining, 4),
            "burn_rates": {k: (None if v is None else round(v, 2)) for k, v in self.burn.items()},
            "alert": self.alert, "message": self.message,
        }


def objectives(settings: Settings) -> list[Objective]:
    """The three objectives with the settings' targets."""
    start_ms = settings.slo_answer_start_s * 1000
    return [
        Objective("answers", f"Answers start within {settings.slo_answer_start_s:g} s", "answer",
                  settings.slo_answer_target,
                  "outcome = 'error' OR COALESCE(ttft_ms, duration_ms) > ?", (start_ms,), "answers"),
        Objective("indexing", "Files index without an internal error", "index", settings.slo_index_target,
                  "outcome = 'error'", (), "files"),
        Objective("api", "Local API requests succeed", "request", settings.slo_api_target,
                  "outcome = 'error' OR outcome = '5xx'", (), "requests"),
    ]


def _label(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def _duration(seconds: float) -> str:
    if seconds < 90 * 60:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def budget(store: ActivityStore, objective: Objective, window_days: int, now_ns: int | None = None) -> Budget:
    """``objective``'s error budget over the last ``window_days``, with its burn-rate alert."""
    now_ns = now_ns if now_ns is not None else time.time_ns()
    allowed = 1 - objective.target  # the error budget, as a share of operations

    def count(seconds: float) -> tuple[int, int]:
        return store.counts(objective.kind, int(now_ns - seconds * NS_PER_S), bad_sql=objective.bad_sql,
                            params=objective.params)

    window_s = window_days * 86400
    total, bad = count(window_s)
    remaining = None if total == 0 else 1 - (bad / total) / allowed if allowed > 0 else (1.0 if bad == 0 else -1.0)
    burn: dict[str, float | None] = {}
    seen: dict[int, tuple[int, int]] = {}
    alert: str | None = None
    fired: BurnRule | None = None
    for rule in RULES:
        for seconds in (rule.long_s, rule.short_s):
            if seconds not in seen:
                seen[seconds] = count(seconds)
                n, b = seen[seconds]
                burn[_label(seconds)] = None if n == 0 or allowed <= 0 else (b / n) / allowed
        threshold = rule.budget_fraction * window_s / rule.long_s
        long_rate, short_rate = burn[_label(rule.long_s)], burn[_label(rule.short_s)]
        if (long_rate is not None and short_rate is not None and long_rate >= threshold
                and short_rate >= threshold and seen[rule.long_s][1] >= MIN_BAD):
            if alert is None or (alert == "slow" and rule.severity == "fast"):
                alert, fired = rule.severity, rule
    message = _message(objective, total, bad, remaining, window_days, fired, seen, burn)
    return Budget(objective, window_days, total, bad, remaining, burn, alert, message)


def _message(objective: Objective, total: int, bad: int, remaining: float | None, window_days: int,
             fired: BurnRule | None, seen: dict[int, tuple[int, int]], burn: dict[str, float | None]) -> str:
    """One sentence a person can act on."""
    target = f"{objective.target * 100:g} %"
    if total == 0:
        return f"{objective.title}: no {objective.unit} in the last {window_days} days yet (objective {target})."
    if fired is None:
        left = max(0.0, remaining or 0.0) * 100
        return (f"{objective.title}: {total - bad:,} of {total:,} {objective.unit} in {window_days} days "
                f"(objective {target}); {left:.0f} % of the error budget left.")
    n, b = seen[fired.long_s]
    rate = burn[_label(fired.long_s)] or 0.0
    window = _label(fired.long_s).replace("h", " h").replace("d", " days")
    left = max(0.0, remaining or 0.0)
    gone = f"; at this rate the rest of the budget is gone in {_duration(left * window_days * 86400 / rate)}" \
        if rate > 0 and left > 0 else "; the budget is spent"
    speed = "fast" if fired.severity == "fast" else "steadily"
    return (f"{objective.title}: the error budget is burning {speed} ({rate:.0f}× the sustainable rate): "
            f"{b} of {n} {objective.unit} missed in the last {window}{gone}.")


def budgets(store: ActivityStore, settings: Settings, now_ns: int | None = None) -> list[Budget]:
    """Every objective's budget under ``settings``."""
    return [budget(store, o, settings.slo_window_days, now_ns) for o in objectives(settings)]
