"""Datasets: the embedded real dataset for runs that need no download."""

from msda_jax.data.embedded import NUM_CLASSES, Split, load_mnist_subset

__all__ = ["NUM_CLASSES", "Split", "load_mnist_subset"]
