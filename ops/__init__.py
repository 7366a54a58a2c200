"""AWS operations with injected clients: pipelines, the model registry (and deployment)."""
