"""The contracts between packages and with SageMaker, each spelled once: imported, never re-typed.

Step inputs, outputs and training channels; the file names that one step writes and another
reads; the keys of evaluation.json that the pipeline's gate reads; the content types and the
payload limit of the endpoint. Writers and readers import the same constant, so a rename breaks
loudly at import time instead of silently at run time (a re-typed file name once lost the model
lineage: Prepare wrote ``algo-1-prepare_summary.json``, training looked for another name).
"""

from __future__ import annotations

# -- the endpoint ----------------------------------------------------------------------------------
JSON_CONTENT_TYPE = "application/json"
CSV_CONTENT_TYPE = "text/csv"
# What the endpoint accepts and answers, in order of preference (also the registered package's
# SupportedContentTypes / SupportedResponseMIMETypes and data capture's content types).
CONTENT_TYPES = (JSON_CONTENT_TYPE, CSV_CONTENT_TYPE)
# InvokeEndpoint's request and response payload limit.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024

# The model registry's approval states (SageMaker's ModelApprovalStatus).
MODEL_APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")

# -- step inputs, outputs and channels -------------------------------------------------------------
SPLITS = ("train", "validation", "test")
# Prepare's outputs, each a ProcessingOutput of the same name.
PREPARE_OUTPUTS = (*SPLITS, "baseline", "quarantine", "artifacts")
# The training job's channels: Prepare outputs of the same names.
TRAINING_CHANNELS = ("train", "validation", "artifacts")
LOADS_INPUT = "loads"
LANE_STATISTICS_OUTPUT = "statistics"
MODEL_INPUT = "model"
TEST_INPUT = "test"
EVALUATION_OUTPUT = "evaluation"
REPORT_OUTPUT = "report"

# -- files one step writes and another reads -------------------------------------------------------
# The resolved data window (lane statistics writes it; Prepare and Register read it).
WINDOW_FILE = "window.json"
# Each Prepare instance writes one summary (rows, validation counts, window, code version)
# into its artifacts output; training merges them into the model's metadata.
PREPARE_SUMMARY_STEM = "prepare_summary"
PREPARE_SUMMARY_GLOB = f"{PREPARE_SUMMARY_STEM}*.json"
BASELINE_FILE = "baseline.csv"
QUARANTINE_FILE = "quarantine.parquet"
EVALUATION_FILE = "evaluation.json"
# The model's lineage as strings (the registry's customer metadata), written by Evaluate.
LINEAGE_FILE = "lineage.json"
REPORT_FILE = "index.html"

# -- evaluation.json -------------------------------------------------------------------------------
REGRESSION_METRICS = "regression_metrics"
BASELINES = ("lane_median", "price_per_km")
IMPROVEMENT = "improvement"
IMPROVEMENT_PREFIX = "mape_reduction_vs_"
MAPE_PATH = f"{REGRESSION_METRICS}.mape.value"
IMPROVEMENT_OVER_LANE_MEDIAN_PATH = f"{IMPROVEMENT}.{IMPROVEMENT_PREFIX}lane_median"


def prepare_summary_file(host: str | None) -> str:
    """The summary file of one Prepare instance (``host``: ``algo-2``), or of a single run."""
    return f"{PREPARE_SUMMARY_STEM}-{host}.json" if host else f"{PREPARE_SUMMARY_STEM}.json"
