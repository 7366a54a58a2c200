"""cfn-lint on every synthesized template: no errors, and only warnings we have explained."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import cx_api
from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

# Warnings we accept, by rule id, with the reason.
ACCEPTED_WARNINGS = {
    "W3045": "the access-log bucket receives S3 server access logs through the log-delivery "
    "ACL (CDK without @aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy); moving a retained "
    "bucket to a bucket policy is a separate, planned change",
}
STACKS = [
    f"FreightPricing-{stage}-{kind}"
    for stage in ("dev", "staging", "prod")
    for kind in ("DataLake", "MlPipeline")
] + [f"FreightPricing-{stage}-Serving" for stage in ("staging", "prod")]


@pytest.mark.parametrize("stack_name", STACKS)
def test_template_has_no_cfn_lint_error(assembly: cx_api.CloudAssembly, stack_name: str) -> None:
    stack = assembly.get_stack_by_name(stack_name)
    text = Path(stack.template_full_path).read_text(encoding="utf-8")
    matches = lint(text, config=ManualArgs(regions=[stack.environment.region]))
    unexplained = [
        f"{m.rule.id} {m.message} at {'/'.join(map(str, m.path))}"
        for m in matches
        if m.rule.id not in ACCEPTED_WARNINGS or not m.rule.id.startswith("W")
    ]
    assert unexplained == []
