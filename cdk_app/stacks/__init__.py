"""Stacks: they compose constructs, split by lifecycle."""
