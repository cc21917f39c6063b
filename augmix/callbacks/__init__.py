"""Lightning callbacks: the run's artefacts (``artifacts``) and what makes long runs safe to
interrupt, resume and trust (``reliability``)."""

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

__all__ = [
    "METRICS_FILE",
    "AugMixSamples",
    "DivergenceError",
    "DivergenceGuard",
    "MetricsJSON",
    "Preemption",
    "StepSeeding",
    "completed_budget",
    "read_metrics",
]
