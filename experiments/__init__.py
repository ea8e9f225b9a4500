"""Experiments: configs (``experiments/configs``) and thin entry points built on ``msda_jax``."""
