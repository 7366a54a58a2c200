"""The stateful data lake: KMS key, buckets, Glue catalog. Kept apart from what is redeployed."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Environment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.constructs.lake_catalog import LakeCatalog
from cdk_app.constructs.secure_bucket import SecureBucket
from stages.config import StageConfig
from stages.names import ResourceNames

ACCESS_LOG_RETENTION_DAYS = 365


def lake_key_alias(names: ResourceNames) -> str:
    """The alias of a stage's lake key: how other stages' policies name it."""
    return f"alias/{names.prefix}-{names.stage}-lake"


class DataLakeStack(Stack):
    """Buckets raw, curated, quarantine, artifacts and monitoring; the lake's Glue tables."""

    def __init__(
        self, scope: Construct, id_: str, *, config: StageConfig, env: Environment
    ) -> None:
        super().__init__(scope, id_, env=env, termination_protection=config.termination_protection)
        names = config.names
        self.key = kms.Key(
            self, "LakeKey", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
            alias=lake_key_alias(names),
            description="Encrypts the freight pricing data lake and model artifacts",
        )  # fmt: skip
        # S3 server access logging cannot write to a KMS-encrypted bucket: S3-managed keys here.
        self.access_logs = s3.Bucket(
            self, "AccessLogs", bucket_name=names.access_log_bucket,
            encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED, versioned=True,
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-logs", expiration=Duration.days(ACCESS_LOG_RETENTION_DAYS),
                noncurrent_version_expiration=Duration.days(30))],
            removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip
        Validations.of(self.access_logs).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason="This is the access-log bucket: logging it into itself would loop",
            )
        )

        def bucket(purpose: str, expire_days: int | None = None) -> s3.Bucket:
            secure = SecureBucket(
                self, f"{purpose.capitalize()}Bucket", bucket_name=names.buckets()[purpose],
                key=self.key, log_bucket=self.access_logs,
                noncurrent_version_days=config.noncurrent_version_days,
                expire_objects_after_days=expire_days,
            )  # fmt: skip
            return secure.bucket

        self.raw = bucket("raw")
        self.curated = bucket("curated")
        self.quarantine = bucket("quarantine")
        self.artifacts = bucket("artifacts")
        self.monitoring = bucket("monitoring", expire_days=config.capture_retention_days)
        self.catalog = LakeCatalog(
            self, "Catalog", database_name=names.glue_database, raw_bucket=self.raw,
            curated_bucket=self.curated, quarantine_bucket=self.quarantine,
            account=config.account,
        )  # fmt: skip
