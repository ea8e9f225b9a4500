"""Training parts: models (``msda_jax.train.models``), the pure train and eval steps, the optimiser.

Needs the ``[train]`` extra (flax, optax). Experiment scripts build on these; nothing here
reads files, logs or parses flags.
"""

from msda_jax.train import models
from msda_jax.train.models import count_params, get_model
from msda_jax.train.optim import make_optimizer, make_schedule
from msda_jax.train.step import (
  OptimizerState,
  decayed,
  init_train_state,
  l2_penalty,
  make_eval_step,
  make_train_step,
)

__all__ = [
  "OptimizerState",
  "count_params",
  "decayed",
  "get_model",
  "init_train_state",
  "l2_penalty",
  "make_eval_step",
  "make_optimizer",
  "make_schedule",
  "make_train_step",
  "models",
]
