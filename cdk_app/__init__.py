"""The CDK app: stage configuration, constructs and stacks of the freight pricing platform."""
