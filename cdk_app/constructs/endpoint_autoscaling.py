"""Autoscaling of the endpoint's variant: target tracking, and night scale-in where asked for."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_app.constructs.realtime_endpoint import RealtimeEndpoint
from stages.serving import VARIANT_NAME, ServingConfig

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# Application Auto Scaling's own role for SageMaker variants (created by the service on first
# use): it may describe and resize endpoints, and nothing else.
SERVICE_LINKED_ROLE = (
    "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
# Scale out fast (an instance takes minutes to join), scale in slowly (no flapping).
SCALE_OUT_COOLDOWN = Duration.seconds(60)
SCALE_IN_COOLDOWN = Duration.seconds(300)
BUSINESS_DAYS = "MON-FRI"
# Business hours ending at 24:00 end at 00:00 the next day.
NEXT_DAYS = "TUE-SAT"


@dataclass(frozen=True, kw_only=True)
class EndpointAutoscalingProps:
    """The endpoint and its stage's scaling limits and business hours."""

    endpoint: RealtimeEndpoint
    serving: ServingConfig


class EndpointAutoscaling(Construct):
    """A scalable target on the endpoint's variant with a target-tracking policy.

    The L2 ``ScalableTarget`` writes the same resources as the L1s would, plus the policy and
    scheduled-action wiring; it is given the service-linked role (imported, immutable) instead
    of creating a role of its own. With ``scale_in_outside_business_hours`` the maximum drops to
    ``min_instances`` when business hours end (weekdays, UTC) and comes back when they start.
    """

    def __init__(self, scope: Construct, id_: str, *, props: EndpointAutoscalingProps) -> None:
        super().__init__(scope, id_)
        serving = props.serving
        self.resource_id = f"endpoint/{props.endpoint.endpoint_name}/variant/{VARIANT_NAME}"
        account = Stack.of(self).account
        role = iam.Role.from_role_arn(
            self,
            "ServiceLinkedRole",
            f"arn:aws:iam::{account}:{SERVICE_LINKED_ROLE}",
            mutable=False,
        )
        self.target = appscaling.ScalableTarget(
            self, "Target", service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=self.resource_id, scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=serving.min_instances, max_capacity=serving.max_instances, role=role,
        )  # fmt: skip
        # The variant must exist before it can be registered.
        self.target.node.add_dependency(props.endpoint.endpoint)
        self.target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=serving.target_invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=SCALE_IN_COOLDOWN, scale_out_cooldown=SCALE_OUT_COOLDOWN,
        )  # fmt: skip
        if serving.scale_in_outside_business_hours:
            hours = serving.business_hours
            self.target.scale_on_schedule(
                "ScaleInEvening",
                schedule=appscaling.Schedule.cron(
                    minute="0", hour=str(hours.end_hour % 24),
                    week_day=NEXT_DAYS if hours.end_hour == 24 else BUSINESS_DAYS,
                ),
                min_capacity=serving.min_instances, max_capacity=serving.min_instances,
            )  # fmt: skip
            self.target.scale_on_schedule(
                "RestoreMorning",
                schedule=appscaling.Schedule.cron(
                    minute="0", hour=str(hours.start_hour), week_day=BUSINESS_DAYS
                ),
                min_capacity=serving.min_instances, max_capacity=serving.max_instances,
            )  # fmt: skip
