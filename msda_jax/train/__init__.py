"""Training parts: models, the pure train and eval steps, the optimiser, data parallelism, checkpoints.

Needs the ``[train]`` extra (flax, optax, orbax-checkpoint). Experiment scripts build on these;
nothing here parses flags. ``models``: the NNX networks; ``step``: the pure steps; ``state``:
the ``TrainState`` pytree and the jitted step over it (the mixer an argument); ``optim``:
SGD and its schedules; ``parallel``: the device mesh and ``jax.shard_map`` wrappers;
``checkpoint``: Orbax checkpoints of a run, verified against ``integrity``'s SHA-256
manifests; ``distributed``: multi-process start-up;
``writers`` and ``progress``: a run's metric files and progress bar.
"""

from msda_jax.train import checkpoint, distributed, integrity, models, parallel, progress, state, writers
from msda_jax.train.checkpoint import Checkpointer, DamagedCheckpointError, load_state
from msda_jax.train.models import count_params, get_model
from msda_jax.train.optim import make_optimizer, make_schedule
from msda_jax.train.parallel import (
  global_batch,
  make_mesh,
  replicate,
  replicated,
  shard_eval_step,
  shard_train_step,
  sync_batch_norm,
)
from msda_jax.train.state import TrainState, jit_train_step
from msda_jax.train.step import (
  OptimizerState,
  decayed,
  init_train_state,
  l2_penalty,
  make_eval_step,
  make_train_step,
)

__all__ = [
  "Checkpointer",
  "DamagedCheckpointError",
  "OptimizerState",
  "TrainState",
  "checkpoint",
  "count_params",
  "decayed",
  "distributed",
  "integrity",
  "get_model",
  "jit_train_step",
  "global_batch",
  "init_train_state",
  "l2_penalty",
  "load_state",
  "make_eval_step",
  "make_mesh",
  "make_optimizer",
  "make_schedule",
  "make_train_step",
  "models",
  "parallel",
  "progress",
  "replicate",
  "replicated",
  "shard_eval_step",
  "shard_train_step",
  "state",
  "sync_batch_norm",
  "writers",
]
