"""profkit: where the time goes in diffusion-model inference."""

__version__ = "0.1.0"

#: Version of every JSON document profkit writes (metadata, summaries, comparisons).
SCHEMA_VERSION = 1
