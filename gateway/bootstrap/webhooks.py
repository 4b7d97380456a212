"""Webhooks: the delivery worker over the outbox, and the endpoint and event services,
under one rule for webhook targets (checked at endpoint creation and at every connect)."""

from dataclasses import dataclass
from datetime import timedelta

from gateway.adapters.db.webhooks import SqlDeliveryStore
from gateway.bootstrap.core import Core
from gateway.bootstrap.resources import Resource
from gateway.services.webhook_endpoints import WebhookEndpointService
from gateway.services.webhook_events import WebhookEventService
from webhooks import signing
from webhooks.retry import RetryPolicy
from webhooks.targets import TargetPolicy
from webhooks.worker import DeliveryWorker


@dataclass(frozen=True, kw_only=True)
class WebhooksArea:
    worker: DeliveryWorker
    endpoints: WebhookEndpointService
    events: WebhookEventService

    def resources(self) -> list[Resource]:
        return [Resource("delivery worker", self.worker.aclose)]


def build_webhooks(core: Core) -> WebhooksArea:
    cfg = core.settings.webhooks
    targets = TargetPolicy.of(cfg.allow_private_targets, cfg.allow_public_targets)
    worker = DeliveryWorker(
        SqlDeliveryStore(core.engine, core.cipher),
        core.clock,
        policy=RetryPolicy(tuple(timedelta(seconds=s) for s in cfg.retry_schedule_seconds)),
        timeout=cfg.timeout_seconds,
        concurrency=cfg.concurrency,
        per_endpoint=cfg.per_endpoint_concurrency,
        on_attempt=core.metrics.attempt,
        targets=targets,
    )
    core.deliveries.connect(worker.wake)
    return WebhooksArea(
        worker=worker,
        endpoints=WebhookEndpointService(
            core.make_uow, core.clock, new_secret=signing.new_secret, targets=targets,
            rotation_overlap=timedelta(hours=cfg.rotation_overlap_hours),
            reader=core.reader),
        events=WebhookEventService(core.make_uow, core.clock, reader=core.reader))
