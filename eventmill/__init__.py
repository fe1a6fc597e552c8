"""eventmill's Python API for users' own test suites.

    from eventmill import replay
    report = replay("my-fn", ["events.jsonl"], mode="event", redis_url="redis://127.0.0.1:6379/0")
    assert report.ok, report.failed
"""

from eventmill.replay import Outcome, ReplayError, ReplayReport, replay

__all__ = ["replay", "ReplayError", "ReplayReport", "Outcome"]
