"""One frozen configuration per stage; only the app entry chooses among them."""

from __future__ import annotations

from dataclasses import dataclass

from stages.names import DEFAULT_REGION, ResourceNames
from stages.serving import BusinessHours, ServingConfig

# The scheduled training window: at least a day, at most ten years of loads.
MIN_TRAINING_WINDOW_DAYS = 1
# The same bound as processing.window.MAX_WINDOW_DAYS (the step that resolves the window), which
# this pure module cannot import; tests/cdk_app/test_scheduled_windows.py holds them equal.
MAX_TRAINING_WINDOW_DAYS = 3 * 366


@dataclass(frozen=True)
class StageConfig:
    """What differs between dev, staging and prod."""

    stage: str
    account: str
    region: str = DEFAULT_REGION
    termination_protection: bool = False
    # Endpoint data capture and Model Monitor reports: kept this many days.
    capture_retention_days: int = 30
    # Noncurrent object versions in the lake: kept this many days.
    noncurrent_version_days: int = 30
    alarm_email: str = "mlops-alerts@example.com"
    # Pipeline parameters the weekly retraining passes.
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.2xlarge"
    prepare_instance_count: int = 1
    max_mape: float = 0.12
    # Days of loads each scheduled run trains on, ending the day before the run starts.
    training_window_days: int = 365
    # When the weekly retraining starts (EventBridge cron, UTC).
    retrain_schedule: str = "cron(0 3 ? * MON *)"
    # The real-time endpoint; None: the stage has none (dev unless asked for).
    serving: ServingConfig | None = None
    # A stage that deploys only packages promoted from another stage's group (prod: staging).
    promote_from: str | None = None

    def __post_init__(self) -> None:
        if self.capture_retention_days < 1 or self.noncurrent_version_days < 1:
            raise ValueError(f"{self.stage}: retention periods must be at least one day")
        if "@" not in self.alarm_email:
            raise ValueError(f"{self.stage}: alarm_email {self.alarm_email!r} is not an address")
        if not MIN_TRAINING_WINDOW_DAYS <= self.training_window_days <= MAX_TRAINING_WINDOW_DAYS:
            raise ValueError(
                f"{self.stage}: training_window_days must be between {MIN_TRAINING_WINDOW_DAYS} "
                f"and {MAX_TRAINING_WINDOW_DAYS}, got {self.training_window_days!r}"
            )
        if self.promote_from is not None and self.promote_from == self.stage:
            raise ValueError(f"{self.stage}: promote_from must name another stage")

    def require_serving(self) -> ServingConfig:
        """The stage's endpoint settings; ValueError when the stage has no endpoint."""
        if self.serving is None:
            raise ValueError(
                f"stage {self.stage} has no endpoint (its StageConfig.serving is None); "
                "staging and prod have one"
            )
        return self.serving

    @property
    def names(self) -> ResourceNames:
        """Every resource name of the stage."""
        return ResourceNames(stage=self.stage, account=self.account)


def stage_configs(account: str, region: str = DEFAULT_REGION) -> dict[str, StageConfig]:
    """The three deployable stages for one account (stages may also live in one account each)."""
    return {
        "dev": StageConfig(stage="dev", account=account, region=region),
        "staging": StageConfig(
            stage="staging",
            account=account,
            region=region,
            capture_retention_days=60,
            prepare_instance_count=2,
            # Every update at once, then a bake on the rollback alarms; one instance at night.
            serving=ServingConfig(traffic_routing="ALL_AT_ONCE", bake_seconds=300),
        ),
        "prod": StageConfig(
            stage="prod",
            account=account,
            region=region,
            termination_protection=True,
            capture_retention_days=90,
            noncurrent_version_days=90,
            prepare_instance_count=3,
            processing_instance_type="ml.m5.2xlarge",
            training_instance_type="ml.m5.4xlarge",
            # A canary of 10% on at least 3 instances (AWS: fewer make no meaningful canary).
            serving=ServingConfig(
                instance_type="ml.c5.xlarge",
                allowed_instance_types=("ml.c5.xlarge", "ml.c5.2xlarge", "ml.m5.xlarge"),
                initial_instance_count=3,
                min_instances=3,
                max_instances=12,
                traffic_routing="CANARY",
                canary_percent=10,
                bake_seconds=600,
                termination_wait_seconds=300,
                scale_in_outside_business_hours=False,
                capture_sampling_percent=20,
                business_hours=BusinessHours(start_hour=5, end_hour=21),
            ),
            promote_from="staging",
        ),
    }
