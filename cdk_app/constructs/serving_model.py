"""The endpoint's model: a registered model package served under a least-privilege role."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, CfnTag, Validations
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_app.constructs.pipeline_execution_role import SAGEMAKER_SERVICE
from cdk_app.constructs.project_image import image_pull_statement
from inference.settings import ENV_ENDPOINT_NAME
from stages.names import ResourceNames
from stages.serving import ENV_MODEL_PACKAGE_ARN, ENV_MODEL_VERSION, INSTANCE_NAMESPACE

# The capture prefix inside the monitoring bucket (names.capture_uri: s3://<bucket>/capture).
CAPTURE_PREFIX = "capture"


@dataclass(frozen=True, kw_only=True)
class ModelPackage:
    """One version of a model package group, as the app validated it from CDK context."""

    arn: str
    group: str
    version: int


@dataclass(frozen=True, kw_only=True)
class EndpointRoleProps:
    """Where the model comes from (image, model data) and where the endpoint writes (capture)."""

    names: ResourceNames
    region: str
    account: str
    image_repository: ecr.IRepository
    # The package's model data: the artifacts bucket of the stage whose group holds it (prod:
    # staging's), read through that lake's key, named by its alias (no cross-stage reference).
    model_data_bucket: str
    model_data_key_alias: str
    # Data capture: this stage's monitoring bucket and lake key.
    capture_key: kms.IKey


class EndpointRole(Construct):
    """The execution role of the stage's endpoint model (names.endpoint_role).

    It exists without a deployed package too, so the first deployment only adds the model.
    Statements are written out: no action wildcards; each resource wildcard is acknowledged.
    """

    def __init__(self, scope: Construct, id_: str, *, props: EndpointRoleProps) -> None:
        super().__init__(scope, id_)
        names, region, account = props.names, props.region, props.account
        self.role = iam.Role(
            self, "Default", role_name=names.endpoint_role,
            assumed_by=iam.ServicePrincipal(SAGEMAKER_SERVICE),
            description=f"Runs the model of the endpoint {names.endpoint}",
        )  # fmt: skip
        model_objects = f"arn:aws:s3:::{props.model_data_bucket}/*"
        capture_objects = f"arn:aws:s3:::{names.monitoring_bucket}/{CAPTURE_PREFIX}/*"
        keys = f"arn:aws:kms:{region}:{account}:key/*"
        log_groups = (
            f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{names.endpoint}*"
        )
        statements = [
            image_pull_statement(props.image_repository),
            iam.PolicyStatement(
                sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="ReadModelData", actions=["s3:GetObject"], resources=[model_objects]
            ),
            # The model data's key is another stage's for prod: named by its alias, so that the
            # serving stack needs no reference into that stage's lake stack.
            iam.PolicyStatement(
                sid="DecryptModelData", actions=["kms:Decrypt"], resources=[keys],
                conditions={"ForAnyValue:StringEquals": {
                    "kms:ResourceAliases": props.model_data_key_alias}},
            ),
            # SageMaker writes data capture with the model's execution role and the given key.
            iam.PolicyStatement(
                sid="WriteCapture", actions=["s3:PutObject"], resources=[capture_objects]
            ),
            iam.PolicyStatement(
                sid="EncryptCapture", actions=["kms:Encrypt", "kms:GenerateDataKey"],
                resources=[props.capture_key.key_arn],
            ),
            iam.PolicyStatement(
                sid="EndpointMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": f"{INSTANCE_NAMESPACE}*"}},
            ),
            iam.PolicyStatement(
                sid="EndpointLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogStreams"],
                resources=[log_groups],
            ),
        ]  # fmt: skip
        added = [self.role.add_to_principal_policy(statement) for statement in statements]
        self.policy = added[0].policy_dependable or self.role
        wildcard_resources = {
            "*": "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
            "permission (PutMetricData is held to our namespace by a condition)",
            model_objects: "object keys of our own artifacts bucket (each model's data)",
            capture_objects: "SageMaker writes capture under <endpoint>/<variant>/yyyy/mm/dd/hh/",
            keys: "the lake key of the package's stage, held to it by its alias (a condition)",
            log_groups: "SageMaker logs the endpoint's variants to groups and streams it names",
        }
        for resource, reason in wildcard_resources.items():
            Validations.of(self.role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason
                )
            )


class ServingModel(Construct):
    """A SageMaker model of one registered package (its image and model data), unnamed.

    CloudFormation generates the name, so a new package replaces the model (and, through the
    generated name, the endpoint configuration) instead of colliding with the old one.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        package: ModelPackage,
        role: EndpointRole,
        endpoint_name: str,
    ) -> None:
        super().__init__(scope, id_)
        # DescribeModelPackage: only the package being served.
        role.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeServedPackage",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[package.arn],
            )
        )
        # No SAGEMAKER_MODEL_SERVER_WORKERS: the server starts one worker per core by itself,
        # which stays right when the stage's instance type changes.
        environment = {
            ENV_ENDPOINT_NAME: endpoint_name,
            ENV_MODEL_PACKAGE_ARN: package.arn,
            ENV_MODEL_VERSION: str(package.version),
        }
        self.model = sagemaker.CfnModel(
            self, "Default", execution_role_arn=role.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=package.arn, environment=environment
            ),
            tags=[CfnTag(key="model-package-arn", value=package.arn),
                  CfnTag(key="model-version", value=str(package.version))],
        )  # fmt: skip
        # SageMaker checks the role when it creates the model: its policy must exist first.
        self.model.node.add_dependency(role.policy)
        self.model_name: str = self.model.attr_model_name
