"""Staff: the accounts of the people who use the console, and their sessions."""

from dataclasses import dataclass
from datetime import timedelta

from gateway.bootstrap.core import Core, Credentials
from gateway.services.staff import StaffPolicy, StaffService


@dataclass(frozen=True, kw_only=True)
class StaffArea:
    staff: StaffService


def build_staff(core: Core, creds: Credentials) -> StaffArea:
    cfg = core.settings.staff
    policy = StaffPolicy(timedelta(minutes=cfg.session_minutes),
                         timedelta(minutes=cfg.idle_minutes))
    return StaffArea(staff=StaffService(
        core.make_uow, passwords=creds.passwords, codes=creds.codes, blind_index=core.index,
        clock=core.clock, policy=policy, throttle=creds.throttle,
        common_passwords=creds.common, reader=core.reader))
