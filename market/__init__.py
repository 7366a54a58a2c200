"""The synthetic European road-freight market and its scenarios (never in the image)."""
