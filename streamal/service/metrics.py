"""Every Prometheus metric of the service, on an injected registry.

Names follow Prometheus conventions: a ``streamal_`` prefix, base units
(seconds, ratios in [0, 1]), ``_total`` for counters, and label values from
small fixed sets (reasons, outcomes, topics, strategy names, partitions).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Outcomes of a consumed label (DESIGN section 3).
LABEL_OUTCOMES = ("joined", "unsolicited", "orphaned", "duplicate", "expired", "new_class")


class Metrics:
    """The service's metrics. Each test makes its own registry, so tests never collide."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.instances = Counter("streamal_instances", "Instances consumed and decided.", registry=r)
        self.label_requests = Counter(
            "streamal_label_requests", "Label requests sent to annotators.", ["strategy", "mode"], registry=r
        )
        self.labels = Counter("streamal_labels", "Labels consumed, by outcome.", ["outcome"], registry=r)
        for outcome in LABEL_OUTCOMES:
            self.labels.labels(outcome)
        self.rejected = Counter(
            "streamal_rejected", "Records dead-lettered or dropped, by topic and reason.", ["topic", "reason"],
            registry=r,
        )
        self.skipped = Counter(
            "streamal_instances_skipped", "Instances not asked about again, by reason (a request for the id is "
            "pending or was answered, or this replica decided the record already: the instance was read again after "
            "a crash or a failed commit, or produced twice).", ["reason"],
            registry=r,
        )
        for reason in ("already_requested", "already_labeled", "already_decided"):
            self.skipped.labels(reason)
        self.reasked = Counter(
            "streamal_requests_reasked", "Expired label requests asked again (STREAMAL_REASK_EXPIRED): still "
            "informative enough when they expired.", registry=r,
        )
        self.pseudo_labels = Counter(
            "streamal_pseudo_labels", "Pseudo-labels produced to the training topic (STREAMAL_PSEUDO_LABELS): unasked "
            "instances learned with the model's own confident prediction. Never counted as labels.", registry=r,
        )
        self.predictions = Counter(
            "streamal_predictions", "Predictions published to the predictions topic (STREAMAL_TOPIC_PREDICTIONS).",
            registry=r,
        )
        self.threshold = Gauge("streamal_threshold", "Current threshold of the budget manager.", registry=r)
        self.budget = Gauge(
            "streamal_budget_ratio", "Label budget in force (fraction of instances): STREAMAL_BUDGET, or what annotator "
            "capacity makes of it.", registry=r,
        )
        self.label_rate = Gauge(
            "streamal_label_rate_ratio", "Realised label rate of this replica (fraction of instances).", registry=r
        )
        self.capacity = Gauge(
            "streamal_capacity_labels_per_hour", "Annotator capacity of the whole group in labels per hour "
            "(STREAMAL_LABELS_PER_HOUR); 0 when unset.", registry=r,
        )
        self.capacity_share = Gauge(
            "streamal_capacity_share_ratio", "This replica's share of the group's capacity: its share of the "
            "instances topic's partitions.", registry=r,
        )
        self.pending = Gauge("streamal_pending_requests", "Outstanding label requests.", registry=r)
        self.pending_evicted = Counter(
            "streamal_pending_evicted", "Pending label requests dropped unanswered because STREAMAL_PENDING_MAX "
            "was reached (a later label for one is orphaned).", registry=r,
        )
        self.pending_oldest = Gauge(
            "streamal_pending_oldest_age_seconds", "Age of the oldest outstanding label request.", registry=r
        )
        self.label_delay = Histogram(
            "streamal_label_delay_seconds", "Time from a label request to its label being joined.",
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600), registry=r,
        )
        self.accuracy = Gauge(
            "streamal_prequential_accuracy_ratio",
            "Accuracy of the model on labeled examples, each predicted before it was learned.", registry=r,
        )
        self.labeled_correct = Counter(
            "streamal_labeled_predictions_correct", "Labeled examples the model predicted right before learning them.",
            registry=r,
        )
        self.labeled_seen = Counter(
            "streamal_labeled_predictions", "Labeled examples predicted before learning them.", registry=r
        )
        self.processing = Histogram(
            "streamal_processing_seconds", "Time to decide one poll of instances, per instance.",
            buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1), registry=r,
        )
        self.learn_latency = Histogram(
            "streamal_label_to_model_seconds", "Time from a label reaching the broker to the model having learned it.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )
        self.lag = Gauge(
            "streamal_consumer_lag_records", "Records behind the end of an assigned partition.",
            ["topic", "partition"], registry=r,
        )
        self.model_version = Gauge("streamal_model_version", "Labeled examples the model has learned.", registry=r)
        self.drift = Counter("streamal_drift_detections", "Drift detections on the prequential error.", registry=r)
        self.ready = Gauge("streamal_ready", "1 when partitions are assigned and the model is replayed.", registry=r)
        self.checkpoints = Counter("streamal_checkpoints", "Checkpoints written.", registry=r)
        self.commit_failures = Counter(
            "streamal_commit_failures", "Offset commits refused (a rebalance took the partitions away).", registry=r
        )
