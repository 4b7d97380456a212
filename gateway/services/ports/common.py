"""Shared by every port: the clock, and what an aggregate that records events offers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from gateway.domain.events import DomainEvent

Clock = Callable[[], datetime]


class HasEvents(Protocol):
    """An aggregate that records domain events (Account, Invoice)."""

    @property
    def events(self) -> list[DomainEvent]: ...
