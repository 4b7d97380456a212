"""What a customer must pass before an invoice of theirs is created (portal and
`POST /v1/me/invoices`)."""

from aiohttp import web

from gateway.http.client_ip import client_ip
from gateway.http.keys import SERVICES
from gateway.services.errors import Forbidden


async def may_create_invoice(request: web.Request, account_id: str) -> None:
    """Each new invoice takes a fresh address: a cap per client address across all its
    accounts (the per-account cap is the service's), and, when addresses must be
    confirmed, a confirmed one (a session from before verification was turned on).
    Only an invoice really created counts (`created_invoice`), not one returned again."""
    services = request.app[SERVICES]
    if services.invoice_limit is not None:
        services.invoice_limit.check(client_ip(request, services.trusted_proxies), "invoice")
    if (services.accounts.requires_verification
            and not await services.accounts.email_verified(account_id)):
        raise Forbidden("confirm your email address first: open the link we mailed you "
                        "(log in again to have a new one sent)")


def created_invoice(request: web.Request) -> None:
    services = request.app[SERVICES]
    if services.invoice_limit is not None:
        services.invoice_limit.record(client_ip(request, services.trusted_proxies))
