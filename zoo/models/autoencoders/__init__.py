"""Autoencoders: dense (plain, linear, stacked, denoising, sparse, variational)."""

from zoo.models.autoencoders import dense  # noqa: F401
