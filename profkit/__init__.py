"""profkit: where the time goes in diffusion-model inference."""

__version__ = "0.1.0"
