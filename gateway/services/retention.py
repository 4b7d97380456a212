"""Deleting what the privacy policy says we no longer keep."""

from datetime import timedelta

from gateway.services.ports import Clock, UnitOfWorkFactory


class RetentionService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, security_log_days: int) -> None:
        self._uow = uow
        self._clock = clock
        self._security_log = timedelta(days=security_log_days)

    async def run(self, dry_run: bool = False) -> dict[str, int]:
        """Rows past their retention period: removed, or (dry run) only counted."""
        now = self._clock()
        async with self._uow() as uow:
            counts = {
                "security_log": await uow.security_log.purge(now - self._security_log, dry_run),
            }
            if not dry_run:
                await uow.commit()
        return counts
