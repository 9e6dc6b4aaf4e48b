"""batchmark: LLM evaluations on Anthropic's Message Batches API."""

from batchmark._errors import (
    BatchmarkError,
    ConfigError,
    CredentialsError,
    DatasetError,
    RenderError,
    RunIncomplete,
    RunNotFound,
)

__all__ = [
    "BatchmarkError",
    "ConfigError",
    "CredentialsError",
    "DatasetError",
    "RenderError",
    "RunIncomplete",
    "RunNotFound",
]
