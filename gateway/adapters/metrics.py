"""Prometheus metrics, in a registry of the application's own (nothing global)."""

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from webhooks.store import AttemptResult

__all__ = ["CONTENT_TYPE", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests_and_webhooks(self.registry)
        self._chains_and_rates(self.registry)
        self._mail(self.registry)
        self._retention(self.registry)
        self._backups(self.registry)

    def _requests_and_webhooks(self, r: CollectorRegistry) -> None:
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
        self.outbox_oldest = Gauge(
            "gateway_outbox_oldest_pending_age_seconds",
            "Age of the oldest delivery still waiting to be sent (0: none waiting)",
            registry=r)

    def _chains_and_rates(self, r: CollectorRegistry) -> None:
        self.watcher_height = Gauge(
            "gateway_watcher_processed_height", "Last block height processed", ["coin"],
            registry=r)
        self.node_up = Gauge(
            "gateway_chain_node_up", "1 when the coin's node answered at the last scrape",
            ["coin"], registry=r)
        self.rates_unavailable = Counter(
            "gateway_rates_unavailable", "Invoices refused because no exchange rate could "
            "be had (no source answered, or no rate configured)", registry=r)
        self.rates_last_success = Gauge(
            "gateway_rates_last_success_timestamp_seconds",
            "When this instance last obtained an exchange rate (0: not yet)", registry=r)
        self.watcher_lag = Gauge(
            "gateway_watcher_lag_blocks", "Node tip height minus processed height", ["coin"],
            registry=r)

    def _mail(self, r: CollectorRegistry) -> None:
        self.mail_attempts = Counter(
            "gateway_mail_attempts", "Queued mail: sent, retry (SMTP failed) or dropped "
            "(older than [mail] max_age_hours, or unreadable)", ["outcome"], registry=r)
        self.mail_queue_depth = Gauge(
            "gateway_mail_queue_depth", "Mails waiting in the queue", registry=r)

    def _retention(self, r: CollectorRegistry) -> None:
        self.last_retention = Gauge(
            "gateway_retention_last_success_timestamp_seconds",
            "When this instance last completed a retention run (0: never)", registry=r)
        # Erasures and backups that fail are retried at the next run; these say that they
        # fail (the leader's log says why; `gateway doctor` and the admin page say what
        # is overdue).
        self.erasure_failures = Counter(
            "gateway_retention_erasure_failures",
            "Account erasures (or deletion-ledger re-applications) that failed; each is "
            "retried at the next retention run", registry=r)
        self.erasures_failing = Gauge(
            "gateway_retention_erasures_failing",
            "Erasures that failed at this instance's last retention run (0: none)",
            registry=r)
        self.register_prune_failing = Gauge(
            "gateway_retention_register_prune_failing",
            "Registers (legal requests, deletion ledger) this instance's last retention "
            "run failed to prune (0: none); retried at the next run", registry=r)
        # Stages of a run (a purge, the inactivity notices, the flush) fail on their own:
        # the others and the customers' erasures still run.
        self.stage_failures = Counter(
            "gateway_retention_stage_failures",
            "Retention-run stages (a purge, the inactivity notices, the flush of erased "
            "data) that failed; each is retried at the next run", registry=r)
        self.stages_failing = Gauge(
            "gateway_retention_stages_failing",
            "Stages that failed at this instance's last retention run (0: none)",
            registry=r)
        self.flush_owed = Gauge(
            "gateway_retention_flush_owed",
            "1 while erased data waits to leave the database files (a flush failed; "
            "retried at every run)", registry=r)

    def _backups(self, r: CollectorRegistry) -> None:
        self.last_backup = Gauge(
            "gateway_backup_last_success_timestamp_seconds",
            "When this instance last wrote a backup (0: never; only the leader writes)",
            registry=r)
        self.backup_failures = Counter(
            "gateway_backup_failures", "Scheduled backups that failed", registry=r)
        self.last_backup_failure = Gauge(
            "gateway_backup_last_failure_timestamp_seconds",
            "When this instance's last failed backup ran (0: none failed)", registry=r)
        self.prune_failing = Gauge(
            "gateway_backup_prune_failing",
            "1 when this instance's last pruning of old backups failed", registry=r)

    def attempt(self, result: AttemptResult) -> None:
        self.delivery_attempts.labels(result.outcome.value).inc()
        self.delivery_latency.observe(result.latency_ms / 1000)

    def mail(self, outcome: str) -> None:
        self.mail_attempts.labels(outcome).inc()

    def retention_run(self, counts: dict[str, int]) -> None:
        # A refund address or a cash token that cannot be erased is an erasure failing too.
        failed = (counts.get("erasure_failures", 0) + counts.get("refund_address_failures", 0)
                  + counts.get("cash_token_failures", 0))
        self.erasure_failures.inc(failed)
        self.erasures_failing.set(failed)
        self.register_prune_failing.set(counts.get("prune_failures", 0))
        stages = counts.get("stage_failures", 0)
        self.stage_failures.inc(stages)
        self.stages_failing.set(stages)
        self.flush_owed.set(counts.get("flush_owed", 0))
        self.last_retention.set_to_current_time()

    def backup_run(self, written: bool, prune_failed: bool) -> None:
        if written:
            self.last_backup.set_to_current_time()
        else:
            self.backup_failures.inc()
            self.last_backup_failure.set_to_current_time()
        self.prune_failing.set(1 if prune_failed else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
