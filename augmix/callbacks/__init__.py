"""Lightning callbacks: the run's artefacts (``artifacts``), what makes long runs safe to
interrupt, resume and trust (``reliability``), and the model summary (``summary``)."""

from augmix.callbacks.artifacts import (
    METRICS_FILE,
    AugMixSamples,
    MetricsJSON,
    completed_budget,
    read_metrics,
)
from augmix.callbacks.reliability import (
    DivergenceError,
    DivergenceGuard,
    Preemption,
    StepSeeding,
)
from augmix.callbacks.summary import ModelSummary

__all__ = [
    "METRICS_FILE",
    "AugMixSamples",
    "DivergenceError",
    "DivergenceGuard",
    "MetricsJSON",
    "ModelSummary",
    "Preemption",
    "StepSeeding",
    "completed_budget",
    "read_metrics",
]
