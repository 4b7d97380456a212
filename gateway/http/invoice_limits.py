"""What a customer must pass before an invoice of theirs is created (portal and
`POST /v1/me/invoices`)."""

from aiohttp import web

from gateway.http.keys import ACCOUNTS, BILLING, client_address
from gateway.services.errors import Forbidden


async def may_create_invoice(request: web.Request, account_id: str) -> None:
    """Each new invoice takes a fresh address: a cap per client address across all its
    accounts (the per-account cap is the service's), and, when addresses must be
    confirmed, a confirmed one (a session from before verification was turned on).
    Only an invoice really created counts (`created_invoice`), not one returned again."""
    window = request.app[BILLING].invoice_limit
    if window is not None:
        window.check(client_address(request), "invoice")
    accounts = request.app[ACCOUNTS].accounts
    if accounts.requires_verification and not await accounts.email_verified(account_id):
        raise Forbidden("confirm your email address first: open the link we mailed you "
                        "(log in again to have a new one sent)")


def created_invoice(request: web.Request) -> None:
    window = request.app[BILLING].invoice_limit
    if window is not None:
        window.record(client_address(request))
