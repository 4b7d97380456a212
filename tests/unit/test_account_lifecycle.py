"""The account's deletion lifecycle as pure domain logic."""

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain import events as ev
from gateway.domain.accounts import Account
from gateway.domain.errors import InvalidInput

NOW = datetime(2026, 3, 1, tzinfo=UTC)
WEEK = timedelta(days=7)


def types(account: Account) -> list[str]:
    return [e.type for e in account.events]


def test_a_repeated_request_never_postpones_the_deletion() -> None:
    account = Account("acc_1", NOW)
    assert account.schedule_deletion(NOW, WEEK) == NOW + WEEK
    assert account.schedule_deletion(NOW + timedelta(days=3), WEEK) == NOW + WEEK
    assert types(account) == [ev.ACCOUNT_DELETION_SCHEDULED]
    assert account.events[0].data["deletion_due_at"] == "2026-03-08T00:00:00Z"


def test_cancel_only_when_scheduled() -> None:
    account = Account("acc_1", NOW)
    assert not account.cancel_deletion()
    account.schedule_deletion(NOW, WEEK)
    assert account.cancel_deletion() and account.deletion_due_at is None
    assert types(account) == [ev.ACCOUNT_DELETION_SCHEDULED, ev.ACCOUNT_DELETION_CANCELLED]


def test_erase_makes_a_tombstone_once_and_it_is_never_activated() -> None:
    account = Account("acc_1", NOW, datacenter="nl-ams", currency="EUR")
    account.schedule_deletion(NOW, WEEK)
    account.erase(NOW + WEEK)
    account.erase(NOW + WEEK * 2)
    assert account.deleted and account.deleted_at == NOW + WEEK
    assert (account.datacenter, account.currency, account.deletion_due_at) == (None, None, None)
    assert types(account).count(ev.ACCOUNT_DELETED) == 1
    account.activate("inv_1", {}, NOW + WEEK * 3)
    assert account.activated_at is None and ev.ACCOUNT_ACTIVATED not in types(account)
    assert not account.cancel_deletion()
    with pytest.raises(InvalidInput):
        account.schedule_deletion(NOW, WEEK)
