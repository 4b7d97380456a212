"""Prometheus metrics, in a registry of the application's own (nothing global)."""

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from webhooks.store import AttemptResult

__all__ = ["CONTENT_TYPE", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_latency = Histogram(
            "gateway_http_request_duration_seconds", "HTTP request latency by route pattern",
            ["method", "route", "status"], registry=r)
        self.delivery_attempts = Counter(
            "gateway_webhook_delivery_attempts", "Webhook delivery attempts by outcome",
            ["outcome"], registry=r)
        self.delivery_latency = Histogram(
            "gateway_webhook_delivery_duration_seconds", "Webhook delivery latency",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15), registry=r)
        self.outbox_depth = Gauge(
            "gateway_outbox_pending_deliveries", "Deliveries waiting to be sent", registry=r)
        self.failing_endpoints = Gauge(
            "gateway_webhook_failing_endpoints",
            "Endpoints that are disabled or whose deliveries are failing", registry=r)
        self.watcher_height = Gauge(
            "gateway_watcher_processed_height", "Last block height processed", ["coin"],
            registry=r)
        self.node_up = Gauge(
            "gateway_chain_node_up", "1 when the coin's node answered at the last scrape",
            ["coin"], registry=r)
        self.outbox_oldest = Gauge(
            "gateway_outbox_oldest_pending_age_seconds",
            "Age of the oldest delivery still waiting to be sent (0: none waiting)",
            registry=r)
        self.rates_unavailable = Counter(
            "gateway_rates_unavailable", "Invoices refused because no exchange rate could "
            "be had (no source answered, or no rate configured)", registry=r)
        self.rates_last_success = Gauge(
            "gateway_rates_last_success_timestamp_seconds",
            "When this instance last obtained an exchange rate (0: not yet)", registry=r)
        self.watcher_lag = Gauge(
            "gateway_watcher_lag_blocks", "Node tip height minus processed height", ["coin"],
            registry=r)

        self.mail_attempts = Counter(
            "gateway_mail_attempts", "Queued mail: sent, retry (SMTP failed) or dropped "
            "(older than [mail] max_age_hours, or unreadable)", ["outcome"], registry=r)
        self.mail_queue_depth = Gauge(
            "gateway_mail_queue_depth", "Mails waiting in the queue", registry=r)
        self.last_backup = Gauge(
            "gateway_backup_last_success_timestamp_seconds",
            "When this instance last wrote a backup (0: never; only the leader writes)",
            registry=r)
        self.last_retention = Gauge(
            "gateway_retention_last_success_timestamp_seconds",
            "When this instance last completed a retention run (0: never)", registry=r)

    def attempt(self, result: AttemptResult) -> None:
        self.delivery_attempts.labels(result.outcome.value).inc()
        self.delivery_latency.observe(result.latency_ms / 1000)

    def mail(self, outcome: str) -> None:
        self.mail_attempts.labels(outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
