"""A lake bucket as the platform wants every bucket: KMS, TLS only, private, versioned, logged."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


class SecureBucket(Construct):
    """An S3 bucket encrypted with a KMS key, TLS-only, private, versioned, access-logged.

    Old object versions expire after ``noncurrent_version_days``; objects themselves after
    ``expire_objects_after_days`` when given (capture data).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket_name: str,
        key: kms.IKey,
        log_bucket: s3.IBucket,
        noncurrent_version_days: int,
        expire_objects_after_days: int | None = None,
        transitions: Sequence[s3.Transition] = (),
    ) -> None:
        super().__init__(scope, id_)
        rules = [
            s3.LifecycleRule(
                id="expire-noncurrent-versions",
                noncurrent_version_expiration=Duration.days(noncurrent_version_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ]
        if expire_objects_after_days is not None:
            rules.append(
                s3.LifecycleRule(
                    id="expire-objects", expiration=Duration.days(expire_objects_after_days)
                )
            )
        if transitions:
            rules.append(s3.LifecycleRule(id="tiering", transitions=list(transitions)))
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=log_bucket,
            server_access_logs_prefix=f"{bucket_name}/",
            lifecycle_rules=rules,
            removal_policy=RemovalPolicy.RETAIN,
        )
