"""Resource names: the one place that turns a prefix and a stage into AWS resource names."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "freight-pricing"
STAGES = ("local", "dev", "staging", "prod")
# Frankfurt: where the forwarder runs; the embedded AWS of local mode uses it too.
DEFAULT_REGION = "eu-central-1"
# S3: 3-63 characters, lower-case letters, digits, hyphens (dots avoided: TLS), start and end
# with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# SageMaker pipeline and model package group names: up to 63 (pipeline: 256) of [a-zA-Z0-9-].
_SAGEMAKER = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# EventBridge rule names: 1-64 of letters, digits, '.', '-', '_'.
_RULE = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
# Glue database names: lower-case, digits and underscores, up to 255.
_GLUE = re.compile(r"^[a-z0-9_]{1,255}$")


@dataclass(frozen=True)
class ResourceNames:
    """Names of every resource of one stage; ``account`` keeps bucket names globally unique."""

    stage: str
    prefix: str = DEFAULT_PREFIX
    account: str | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,23}", self.prefix):
            raise ValueError(
                f"prefix must be 1-24 lower-case letters, digits or hyphens, got {self.prefix!r}"
            )
        if self.account is not None and not re.fullmatch(r"\d{12}", self.account):
            raise ValueError(f"account must be a 12-digit AWS account id, got {self.account!r}")
        for name in self.buckets().values():
            if not _BUCKET.fullmatch(name):
                raise ValueError(f"bucket name {name!r} breaks S3 naming rules")
        for name in (self.pipeline, self.model_package_group):
            if not _SAGEMAKER.fullmatch(name):
                raise ValueError(f"SageMaker name {name!r} breaks the naming rules")
        for name in self.rules().values():
            if not _RULE.fullmatch(name):
                raise ValueError(f"EventBridge rule name {name!r} breaks the naming rules")
        if not _GLUE.fullmatch(self.glue_database):
            raise ValueError(f"Glue database name {self.glue_database!r} breaks the naming rules")

    def _bucket(self, purpose: str) -> str:
        account = f"-{self.account}" if self.account else ""
        return f"{self.prefix}-{self.stage}-{purpose}{account}"

    @property
    def raw_bucket(self) -> str:
        """Raw load events as they arrive."""
        return self._bucket("raw")

    @property
    def curated_bucket(self) -> str:
        """Validated, deduplicated loads."""
        return self._bucket("curated")

    @property
    def quarantine_bucket(self) -> str:
        """Rejected rows with their reasons."""
        return self._bucket("quarantine")

    @property
    def artifacts_bucket(self) -> str:
        """Pipeline outputs: splits, models, evaluations, baselines."""
        return self._bucket("artifacts")

    @property
    def monitoring_bucket(self) -> str:
        """Endpoint data capture and Model Monitor reports."""
        return self._bucket("monitoring")

    @property
    def access_log_bucket(self) -> str:
        """S3 server access logs of the other buckets."""
        return self._bucket("access-logs")

    def buckets(self) -> dict[str, str]:
        """Every bucket by purpose."""
        return {
            "raw": self.raw_bucket,
            "curated": self.curated_bucket,
            "quarantine": self.quarantine_bucket,
            "artifacts": self.artifacts_bucket,
            "monitoring": self.monitoring_bucket,
        }

    @property
    def glue_database(self) -> str:
        """The lake's Glue database."""
        return f"{self.prefix}_{self.stage}".replace("-", "_")

    @property
    def pipeline(self) -> str:
        """The SageMaker pipeline."""
        return f"{self.prefix}-{self.stage}"

    @property
    def model_package_group(self) -> str:
        """The model registry group."""
        return f"{self.prefix}-{self.stage}"

    @property
    def sagemaker_role(self) -> str:
        """The execution role of the pipeline's jobs."""
        return f"{self.prefix}-{self.stage}-sagemaker"

    @property
    def notification_topic(self) -> str:
        """Pipeline failures and model approvals are announced here."""
        return f"{self.prefix}-{self.stage}-pipeline"

    def rules(self) -> dict[str, str]:
        """Every EventBridge rule by purpose: named, so that policies can name them by ARN."""
        return {
            "pipeline_failed": f"{self.prefix}-{self.stage}-pipeline-failed",
            "model_approved": f"{self.prefix}-{self.stage}-model-approved",
            "retraining": f"{self.prefix}-{self.stage}-retraining",
            "deploy_on_approval": f"{self.prefix}-{self.stage}-deploy-approved",
        }

    @property
    def endpoint(self) -> str:
        """The stage's real-time endpoint (in local mode: the local endpoint's name)."""
        return f"{self.prefix}-{self.stage}"

    @property
    def alarm_prefix(self) -> str:
        """The endpoint's CloudWatch alarms start with this."""
        return f"{self.prefix}-{self.stage}-endpoint"

    @property
    def composite_alarm(self) -> str:
        """The endpoint's one health alarm over all the others."""
        return f"{self.alarm_prefix}-health"

    @property
    def dashboard(self) -> str:
        """The serving dashboard."""
        return f"{self.prefix}-{self.stage}-serving"

    @property
    def deployer_project(self) -> str:
        """The CodeBuild project that runs ``freight deploy`` for the stage."""
        return f"{self.prefix}-{self.stage}-deployer"

    @property
    def endpoint_role(self) -> str:
        """The execution role of the endpoint's model (reads the model data, the image)."""
        return f"{self.prefix}-{self.stage}-endpoint"

    @property
    def capture_uri(self) -> str:
        """Endpoint data capture: SageMaker adds ``<endpoint>/<variant>/yyyy/mm/dd/hh/``."""
        return f"s3://{self.monitoring_bucket}/capture"

    def sagemaker_role_arn(self, account: str) -> str:
        """The execution role's ARN in ``account``."""
        return f"arn:aws:iam::{account}:role/{self.sagemaker_role}"

    @property
    def raw_loads_uri(self) -> str:
        """Where daily raw load partitions land."""
        return f"s3://{self.raw_bucket}/raw/loads"
