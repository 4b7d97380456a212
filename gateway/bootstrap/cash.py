"""Cash by mail (docs/cash.md): the service, with `[cash]`'s rules and instructions and
the blind index its tokens are stored by."""

from datetime import timedelta

from gateway.bootstrap.core import Core
from gateway.domain.cash import CashRules
from gateway.services.cash import CashInstructions, CashService


def build_cash(core: Core) -> CashService:
    cfg = core.settings.cash
    instructions = None if cfg.postal_address is None else CashInstructions(
        cfg.postal_address, cfg.instructions, cfg.token_days)
    return CashService(
        core.make_uow, clock=core.clock, index=core.index, instructions=instructions,
        rules=CashRules(timedelta(days=cfg.token_days), timedelta(days=cfg.keep_used_days)),
        reader=core.reader)
