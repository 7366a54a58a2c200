"""The least-privilege execution role of the pipeline's processing and training jobs."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct, IDependable

from cdk_app.constructs.project_image import image_pull_statement
from stages.config import StageConfig

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


@dataclass(frozen=True, kw_only=True)
class PipelineExecutionRoleProps:
    """The stage, the lake's key and the repository of the project image."""

    config: StageConfig
    lake_key: kms.IKey
    image_repository: ecr.IRepository


class PipelineExecutionRole(Construct):
    """The role SageMaker assumes for the pipeline's jobs, with written-out statements.

    Explicit actions on bucket names (not ``grant_*``): no action wildcards; each remaining
    resource wildcard is acknowledged to cdk-nag with its reason.
    """

    def __init__(self, scope: Construct, id_: str, *, props: PipelineExecutionRoleProps) -> None:
        super().__init__(scope, id_)
        config = props.config
        names = config.names
        # "Default" is left out of logical ids: the named role keeps the id it had before it
        # moved into this construct (a new id would create a second role of the same name).
        self.role = iam.Role(
            self, "Default", role_name=names.sagemaker_role,
            assumed_by=iam.ServicePrincipal(SAGEMAKER_SERVICE),
            description="Runs the freight pricing pipeline's processing and training jobs",
        )  # fmt: skip
        buckets = names.buckets()
        readable = [buckets["raw"], buckets["curated"]]
        writable = [buckets["quarantine"], buckets["artifacts"], buckets["monitoring"]]
        account, region = config.account, config.region
        job_prefix = f"arn:aws:sagemaker:{region}:{account}"
        log_groups = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/*"
        group = names.model_package_group
        statements = [
            iam.PolicyStatement(
                sid="ListLakeBuckets", actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[f"arn:aws:s3:::{name}" for name in readable + writable],
            ),
            iam.PolicyStatement(
                sid="ReadLake", actions=["s3:GetObject"],
                resources=[f"arn:aws:s3:::{name}/*" for name in readable + writable],
            ),
            iam.PolicyStatement(
                sid="WriteOutputs",
                actions=["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[f"arn:aws:s3:::{name}/*" for name in writable],
            ),
            iam.PolicyStatement(
                sid="UseLakeKey",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[props.lake_key.key_arn],
            ),
            image_pull_statement(props.image_repository),
            iam.PolicyStatement(
                sid="PipelineJobs",
                actions=[
                    "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob", "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[f"{job_prefix}:processing-job/*", f"{job_prefix}:training-job/*"],
            ),
            iam.PolicyStatement(
                sid="ModelRegistry",
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                         "sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"],
                resources=[f"{job_prefix}:model-package/{group}/*",
                           f"{job_prefix}:model-package-group/{group}"],
            ),
            iam.PolicyStatement(
                sid="JobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogStreams"],
                resources=[log_groups],
            ),
            iam.PolicyStatement(
                sid="PassItselfToJobs", actions=["iam:PassRole"], resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER_SERVICE}},
            ),
            # The Model Monitor analyzer image (QualityCheck step) lives in AWS's account.
            iam.PolicyStatement(
                sid="PullImages", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            ),
        ]  # fmt: skip
        added = [self.role.add_to_principal_policy(statement) for statement in statements]
        # What a pipeline must wait for: its jobs fail until the role's policy exists.
        self.policy: IDependable = added[0].policy_dependable or self.role
        wildcard_resources = {
            **{f"arn:aws:s3:::{name}/*": "object keys of our own bucket"
               for name in readable + writable},
            f"{job_prefix}:processing-job/*": "SageMaker names each pipeline job at run time",
            f"{job_prefix}:training-job/*": "SageMaker names each pipeline job at run time",
            f"{job_prefix}:model-package/{group}/*": "every version of our own model package group",
            log_groups: "SageMaker jobs log to per-job groups under /aws/sagemaker/",
            "*": "ecr:GetAuthorizationToken has no resource-level permission",
        }  # fmt: skip
        for resource, reason in wildcard_resources.items():
            Validations.of(self.role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason
                )
            )
