"""Errors that carry a message meant for the user, printed without a traceback by the entry points."""


class AugMixError(Exception):
    """Base class: the message says what was wrong and how to fix it."""


class ConfigError(AugMixError, ValueError):
    """A configuration value is invalid."""


class DataError(AugMixError):
    """A dataset or benchmark file is missing, unreadable or malformed."""


class CheckpointError(AugMixError):
    """A checkpoint is missing, unreadable or doesn't match the data."""


class RunDirError(AugMixError):
    """A file a run wrote into its run dir (metrics.json, .hydra/) is damaged or not what it should be."""
