"""The data lake stack, synthesized offline: security settings, catalog, nag, stable ids."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Validations, cx_api
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from cdk_app.app import build_app
from cdk_app.stacks.data_lake import DataLakeStack
from stages.config import StageConfig, stage_configs

ACCOUNT = "123456789012"
ENV = Environment(account=ACCOUNT, region="eu-central-1")


def _template(stage: str = "dev") -> Template:
    app = App()
    stack = DataLakeStack(app, "Lake", config=stage_configs(ACCOUNT)[stage], env=ENV)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def template() -> Template:
    return _template()


def _buckets(template: Template) -> dict[str, Any]:
    return dict(template.find_resources("AWS::S3::Bucket"))


def test_one_key_with_rotation_and_six_buckets(template: Template) -> None:
    template.resource_count_is("AWS::KMS::Key", 1)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    names = {b["Properties"]["BucketName"] for b in _buckets(template).values()}
    assert names == {
        f"freight-pricing-dev-{purpose}-{ACCOUNT}"
        for purpose in ("raw", "curated", "quarantine", "artifacts", "monitoring", "access-logs")
    }


def test_lake_buckets_are_kms_encrypted_private_versioned_and_logged(template: Template) -> None:
    lake = {
        logical: bucket["Properties"]
        for logical, bucket in _buckets(template).items()
        if "access-logs" not in bucket["Properties"]["BucketName"]
    }
    assert len(lake) == 5
    for properties in lake.values():
        rule = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True,
            "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }  # fmt: skip
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert "LoggingConfiguration" in properties
        rules = {r["Id"]: r for r in properties["LifecycleConfiguration"]["Rules"]}
        assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {
            "NoncurrentDays": 30
        }


def test_only_capture_and_monitoring_data_expire(template: Template) -> None:
    expiring = {
        b["Properties"]["BucketName"]: r["ExpirationInDays"]
        for b in _buckets(template).values()
        for r in b["Properties"]["LifecycleConfiguration"]["Rules"]
        if "ExpirationInDays" in r
    }
    assert expiring == {
        f"freight-pricing-dev-monitoring-{ACCOUNT}": 30,
        f"freight-pricing-dev-access-logs-{ACCOUNT}": 365,
    }


def test_every_bucket_refuses_plain_http(template: Template) -> None:
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 6
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_glue_tables_are_partitioned_by_day_with_projection(template: Template) -> None:
    template.resource_count_is("AWS::Glue::Database", 1)
    template.has_resource_properties(
        "AWS::Glue::Database", {"DatabaseInput": {"Name": "freight_pricing_dev"}}
    )
    tables = template.find_resources("AWS::Glue::Table")
    by_name = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in tables.values()
    }
    assert set(by_name) == {"raw_loads", "curated_loads", "quarantine"}
    for table in by_name.values():
        assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
        parameters = table["Parameters"]
        assert parameters["projection.enabled"] == "true"
        assert parameters["projection.dt.type"] == "date"
        # The bucket name is a reference inside a join; the template ends with the partition.
        assert json.dumps(parameters["storage.location.template"]).endswith('dt=${dt}/"]]}')
    raw_columns = {
        c["Name"]: c["Type"] for c in by_name["raw_loads"]["StorageDescriptor"]["Columns"]
    }
    assert raw_columns["price_eur"] == "double"
    assert raw_columns["pickup_at"] == "timestamp"
    quarantine_columns = [c["Name"] for c in by_name["quarantine"]["StorageDescriptor"]["Columns"]]
    assert quarantine_columns[-2:] == ["quarantine_reason", "quarantine_detail"]


def test_stateful_resources_are_retained_and_prod_is_protected() -> None:
    template = _template("prod")
    for kind in ("AWS::S3::Bucket", "AWS::KMS::Key"):
        for resource in template.find_resources(kind).values():
            assert resource["DeletionPolicy"] == "Retain"
    app = App()
    prod = DataLakeStack(app, "Prod", config=stage_configs(ACCOUNT)["prod"], env=ENV)
    dev = DataLakeStack(app, "Dev", config=stage_configs(ACCOUNT)["dev"], env=ENV)
    assert prod.termination_protection is True
    assert dev.termination_protection is False


# Logical ids of stateful resources: a change here means CloudFormation would REPLACE the
# resource (a new, empty bucket). Update only on purpose, with a migration plan.
STATEFUL_LOGICAL_IDS = {
    "AccessLogs8B620ECA",
    "ArtifactsBucket454C14F5",
    "CatalogDatabaseE63956BB",
    "CatalogcuratedloadsA96A6357",
    "Catalogquarantine4264BA0B",
    "CatalograwloadsCCE7BBA2",
    "CuratedBucket226458B4",
    "LakeKey09476F72",
    "MonitoringBucket23C4EE5E",
    "QuarantineBucketC7BB48D1",
    "RawBucketF4E29A3F",
}


def test_stateful_resources_keep_their_logical_ids(template: Template) -> None:
    stateful = {
        logical
        for kind in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Glue::Database", "AWS::Glue::Table")
        for logical in template.find_resources(kind)
    }
    assert stateful == STATEFUL_LOGICAL_IDS


def test_every_stage_synthesizes_with_no_unacknowledged_nag_error(
    assembly: cx_api.CloudAssembly,  # synthesis raises ValidationFailed on a cdk-nag error
) -> None:
    assert sorted(stack.stack_name for stack in assembly.stacks) == sorted(
        [
            f"FreightPricing-{stage}-{kind}"
            for stage in ("dev", "prod", "staging")
            for kind in ("DataLake", "MlPipeline")
        ]
        + ["FreightPricing-staging-Serving", "FreightPricing-prod-Serving"]  # dev serves nothing
    )


def test_nag_is_really_checking() -> None:
    app = App()
    stack = Stack(app, "Careless", env=ENV)
    s3.Bucket(stack, "Open")  # no TLS enforcement, no logging
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="AwsSolutions-S"):
        app.synth()


def test_unknown_stage_context_is_an_error() -> None:
    with pytest.raises(ValueError, match="context stage must be one of"):
        build_app(App(context={"stage": "qa"}))


def test_bad_stage_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="alarm_email"):
        StageConfig(stage="dev", account=ACCOUNT, alarm_email="nobody")


def test_bucket_properties_match_expected_shape(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {"BucketName": f"freight-pricing-dev-raw-{ACCOUNT}",
         "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
         "BucketEncryption": Match.any_value()},
    )  # fmt: skip
