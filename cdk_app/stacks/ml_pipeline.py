"""The ML pipeline stack: project image, execution role, model registry, pipeline and its rules."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, Environment, Fn, Stack, Validations
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk_app.stacks.data_lake import DataLakeStack
from stages.config import StageConfig

REPOSITORY = Path(__file__).resolve().parents[2]
# The definition is built by the SDK with plain strings; the image URI is a CDK token, so a
# placeholder stands in for it and is swapped for the token in the JSON text.
IMAGE_PLACEHOLDER = (
    "111111111111.dkr.ecr.eu-central-1.amazonaws.com/freight-pricing:synth-placeholder"
)
IMAGE_EXCLUDES = [
    ".git",
    ".venv",
    ".uv",
    "work",
    "cdk.out",
    "tests",
    "bench",
    "docs",
    "node_modules",
]


def substitute(text: str, placeholder: str, token: str) -> str:
    """``text`` with every ``placeholder`` replaced by ``token`` (an Fn::Join when needed)."""
    parts = text.split(placeholder)
    if len(parts) == 1:
        return text
    joined: list[str] = []
    for index, part in enumerate(parts):
        if index:
            joined.append(token)
        joined.append(part)
    return Fn.join("", joined)


class MlPipelineStack(Stack):
    """Everything the SageMaker pipeline needs, for one stage."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        lake: DataLakeStack,
        code_version: str,
        env: Environment,
    ) -> None:
        super().__init__(scope, id_, env=env)
        names = config.names
        self.image = ecr_assets.DockerImageAsset(
            self, "Image", directory=str(REPOSITORY), file="container/Dockerfile",
            exclude=IMAGE_EXCLUDES, platform=ecr_assets.Platform.LINUX_AMD64,
        )  # fmt: skip
        self.role = self._execution_role(config, lake)
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup", model_package_group_name=names.model_package_group,
            model_package_group_description="Freight price models (gated by the pipeline)",
        )  # fmt: skip
        self.pipeline = self._pipeline(config, code_version)
        self.pipeline.node.add_dependency(self.model_package_group)
        self.pipeline_arn = (
            f"arn:aws:sagemaker:{config.region}:{config.account}:pipeline/{names.pipeline}"
        )
        self.topic_key = kms.Key(self, "NotificationKey", enable_key_rotation=True)
        self.topic_key.grant_encrypt_decrypt(iam.ServicePrincipal("events.amazonaws.com"))
        self.topic = sns.Topic(
            self, "Notifications", topic_name=names.notification_topic,
            master_key=self.topic_key, enforce_ssl=True,
        )  # fmt: skip
        self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.retrain_rule = self._retrain_rule(config)
        self.failure_rule = events.Rule(
            self, "PipelineFailed",
            description="A pipeline execution failed",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Building Pipeline Execution Status Change"],
                detail={"currentPipelineExecutionStatus": ["Failed"],
                        "pipelineArn": [self.pipeline_arn]},
            ),
            targets=[targets.SnsTopic(self.topic)],
        )  # fmt: skip
        # The deployment target (staging endpoint) comes with the endpoint stack; until then the
        # approval is announced on the topic.
        self.approval_rule = events.Rule(
            self, "ModelApproved",
            description="A model package of our group was approved",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [names.model_package_group],
                        "ModelApprovalStatus": ["Approved"]},
            ),
            targets=[targets.SnsTopic(self.topic)],
        )  # fmt: skip

    def _execution_role(self, config: StageConfig, lake: DataLakeStack) -> iam.Role:
        names = config.names
        role = iam.Role(
            self, "ExecutionRole", role_name=names.sagemaker_role,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Runs the freight pricing pipeline's processing and training jobs",
        )  # fmt: skip
        # Explicit actions on bucket names (not grant_*): no action wildcards, and the
        # resource wildcards below are object keys of our own buckets.
        buckets = names.buckets()
        readable = [buckets["raw"], buckets["curated"]]
        writable = [buckets["quarantine"], buckets["artifacts"], buckets["monitoring"]]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListLakeBuckets", actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[f"arn:aws:s3:::{name}" for name in readable + writable],
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadLake", actions=["s3:GetObject"],
                resources=[f"arn:aws:s3:::{name}/*" for name in readable + writable],
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOutputs",
                actions=["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[f"arn:aws:s3:::{name}/*" for name in writable],
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                sid="UseLakeKey",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[lake.key.key_arn],
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullOurImage",
                actions=["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
                         "ecr:BatchGetImage"],
                resources=[self.image.repository.repository_arn],
            )
        )  # fmt: skip
        account, region = config.account, config.region
        job_prefix = f"arn:aws:sagemaker:{region}:{account}"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PipelineJobs",
                actions=[
                    "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob", "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[f"{job_prefix}:processing-job/*", f"{job_prefix}:training-job/*"],
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ModelRegistry",
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                         "sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"],
                resources=[f"{job_prefix}:model-package/{names.model_package_group}/*",
                           f"{job_prefix}:model-package-group/{names.model_package_group}"],
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogStreams"],
                resources=[f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/*"],
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassItselfToJobs", actions=["iam:PassRole"], resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )  # fmt: skip
        # The Model Monitor analyzer image (QualityCheck step) lives in AWS's account.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullImages", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )
        )
        wildcard_resources = {
            **{f"arn:aws:s3:::{name}/*": "object keys of our own bucket"
               for name in readable + writable},
            f"{job_prefix}:processing-job/*": "SageMaker names each pipeline job at run time",
            f"{job_prefix}:training-job/*": "SageMaker names each pipeline job at run time",
            f"{job_prefix}:model-package/{names.model_package_group}/*":
                "every version of our own model package group",
            f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/*":
                "SageMaker jobs log to per-job groups under /aws/sagemaker/",
            "*": "ecr:GetAuthorizationToken has no resource-level permission",
        }  # fmt: skip
        for resource, reason in wildcard_resources.items():
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason
                )
            )
        return role

    def _pipeline(self, config: StageConfig, code_version: str) -> sagemaker.CfnPipeline:
        from pipelines.definition import PipelineConfig, definition_json

        names = config.names
        pipeline_config = PipelineConfig(
            pipeline_name=names.pipeline,
            region=config.region,
            role_arn=f"arn:aws:iam::{config.account}:role/{names.sagemaker_role}",
            image_uri=IMAGE_PLACEHOLDER,
            artifacts_bucket=names.artifacts_bucket,
            raw_loads_uri=names.raw_loads_uri,
            model_package_group_name=names.model_package_group,
            code_version=code_version,
        )
        body = substitute(definition_json(pipeline_config), IMAGE_PLACEHOLDER, self.image.image_uri)
        pipeline = sagemaker.CfnPipeline(
            self, "Pipeline", pipeline_name=names.pipeline, role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": body},
            pipeline_description="Freight price model: prepare, baseline, train, evaluate, gate, "
            "register",
        )  # fmt: skip
        pipeline.node.add_dependency(self.role)
        return pipeline

    def _retrain_rule(self, config: StageConfig) -> events.CfnRule:
        invoker = iam.Role(
            self, "RetrainInvoker", assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="Lets the weekly schedule start the pipeline",
        )  # fmt: skip
        invoker.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartPipelineExecution"], resources=[self.pipeline_arn]
            )
        )
        parameters = [
            {"name": "ProcessingInstanceType", "value": config.processing_instance_type},
            {"name": "TrainingInstanceType", "value": config.training_instance_type},
            {"name": "PrepareInstanceCount", "value": str(config.prepare_instance_count)},
            {"name": "MaxMape", "value": str(config.max_mape)},
        ]
        return events.CfnRule(
            self, "WeeklyRetraining", schedule_expression=config.retrain_schedule,
            description="Retrain the price model every week",
            targets=[events.CfnRule.TargetProperty(
                arn=self.pipeline_arn, id="pipeline", role_arn=invoker.role_arn,
                sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=[
                        events.CfnRule.SageMakerPipelineParameterProperty(**p) for p in parameters
                    ]
                ),
            )],
        )  # fmt: skip
