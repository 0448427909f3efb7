"""Pipelines profkit can run: the built-in tiny ones, or any diffusers pipeline folder / hub id."""

from profkit.pipelines.builtin import BUILTIN_MODELS, DEFAULT_MODEL
from profkit.pipelines.loading import DTYPES, LoadedPipeline, load_pipeline, resolve_device

__all__ = ["BUILTIN_MODELS", "DEFAULT_MODEL", "DTYPES", "LoadedPipeline", "load_pipeline", "resolve_device"]
