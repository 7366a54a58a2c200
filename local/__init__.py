"""Local mode: the embedded AWS, the local pipeline runner and endpoint (never in the image)."""
