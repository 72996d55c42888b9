"""The token bucket and the retry budget, on a clock the test moves by hand."""

from __future__ import annotations

from labsim.components.load_balancer import RetryBudget
from labsim.model.config import RetryConfig
from labsim.model.rate_limit import RateLimiter


class Hand:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_refusal_then_refill():
    now = Hand()
    limiter = RateLimiter(rate=2, burst=3, now=now)
    verdicts = [limiter.check("alice") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[0].headers == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": "1",
    }
    assert verdicts[3].headers["Retry-After"] == "1"
    assert verdicts[3].headers["RateLimit-Remaining"] == "0"
    assert limiter.check("bob").allowed  # each client has its own bucket
    now.t = 0.5  # one token back at 2 a second
    assert limiter.check("alice").allowed
    assert not limiter.check("alice").allowed


def test_retry_budget_allows_a_share_of_recent_requests():
    budget = RetryBudget(
        RetryConfig(attempts=1, budget_percent=10, min_retries=2, budget_window=10)
    )
    for _ in range(50):
        budget.note_request(0.0)
    # max(2, 10 % of 50 = 5): five retries, then none
    assert [budget.try_spend(0.0) for _ in range(6)] == [True] * 5 + [False]
    for _ in range(50):
        budget.note_request(11.0)  # the first second fell out of the window
    assert [budget.try_spend(11.0) for _ in range(6)] == [True] * 5 + [False]
