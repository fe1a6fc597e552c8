"""Replay recorded events through a running eventmill, from the CLI or from Python."""

from eventmill.replay.api import ReplayError, replay
from eventmill.replay.report import Outcome, ReplayReport

__all__ = ["replay", "ReplayError", "ReplayReport", "Outcome"]
