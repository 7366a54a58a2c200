"""Constructs: one per concern, exposing their resources as attributes."""
