"""Training a figure's model without mixing: the same initialisation, before and after."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
import optax
from flax import nnx

from msda_jax.train import init_train_state, make_train_step


def before_and_after(
  model: nnx.Module,
  tx: optax.GradientTransformation,
  images: jax.Array,
  labels: jax.Array,
  *,
  steps: int,
  seed: int,
  weight_decay: float = 0.0,
  preprocess: Callable[[jax.Array], jax.Array] | None = None,
) -> tuple[nnx.Module, nnx.Module]:
  """``(untrained, trained)``: ``model`` as given, and a copy after ``steps`` steps of 100 random
  images (unmixed cross-entropy, ``tx``); both in inference mode."""
  graphdef, state, opt = init_train_state(model, tx)
  step = jax.jit(
    make_train_step(graphdef=graphdef, tx=tx, mixer=None, weight_decay=weight_decay, preprocess=preprocess)
  )
  rng = np.random.default_rng(seed)
  for t in range(steps):
    index = rng.choice(images.shape[0], 100, replace=False)
    state, opt, _ = step(state, opt, {"image": images[index], "label": labels[index]}, jax.random.key(t))
  trained = nnx.merge(graphdef, state)
  model.eval()
  trained.eval()
  return model, trained
