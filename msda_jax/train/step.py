"""The train and eval steps in pure functional form, with mixing done on device inside the step.

A model is carried as ``(graphdef, model_state)`` from ``nnx.split(model)``: ``graphdef`` is
static (bound when the step is built) and ``model_state`` is an ``nnx.State`` pytree holding
the parameters (``nnx.Param``) and the BatchNorm running statistics (``nnx.BatchStat``). The
optimiser state is an ``OptimizerState``: the step counter and the optax state of the
parameters. A train step is then a pure function

    ``train_step(model_state, opt_state, batch, key, mixer) -> (model_state, opt_state, metrics)``

with no side effects and no hidden state: the same inputs give the same outputs bit for bit, the
output pytrees have the structure of the inputs (so ``jax.jit(..., donate_argnums=(0, 1))``
reuses their buffers), and it can be wrapped in ``jax.shard_map`` as it is. Inside it:

1. the key is ``fold_in(key, step)`` (and ``fold_in(., axis_index)`` under a mesh axis), so one
   key per run suffices;
2. the ``Mixer`` mixes the images and labels (Eq. 1); ``mixer=None`` trains on one-hot labels.
   What the method reads beyond them (``mixer.needs()``, ``msda_jax.needs``) is computed first
   by ``method.prepare`` from a ``ModelView`` of the model in inference mode: PuzzleMix's and
   SaliencyMix's saliency is the input gradient of the mean cross-entropy on the clean batch
   (one more forward-backward pass, as the PuzzleMix reference computes it; PuzzleMix's
   adversarial noise comes from the same gradient). Methods that read nothing cost nothing.
   A hidden-layer method (Manifold Mixup, PatchUp: ``method.hidden``) is not applied to the
   images: the model mixes the features of a layer drawn from the method's ``layers`` during its
   forward pass (``msda_jax.train.hidden``; every model takes ``model(x, mix=hook)``), with the
   step's key, and the targets are that layer's;
3. the model runs in train mode (batch statistics, running averages updated); a method whose
   ``needs().outputs`` names model outputs recomputes the targets from them
   (``method.relabel``): the model ``sow``s them as ``nnx.Intermediate`` under those names;
4. the loss is the soft-target cross-entropy on the mixed targets (or the given ``loss`` of
   them, ``msda_jax.losses``: DecoupleMix's ``decoupled_mixup``) plus
   ``weight_decay / 2 * sum(w ** 2)`` over the convolution and dense kernels (not the biases,
   not the BatchNorm scales), so its gradient adds ``weight_decay * w`` as SGD weight decay does;
5. under a mesh axis (``axis_name``) the loss, gradients, BatchNorm statistics and metrics are
   averaged over the axis with ``jax.lax.pmean``, so every replica applies the same update.
   The loss is averaged before differentiation: with ``shard_map``'s default ``check_vma=True``
   the gradient of replicated parameters is then already the mean over devices (the transpose
   of their implicit broadcast is a sum) and the ``pmean`` of the gradients is the identity;
   with ``check_vma=False`` each device gets its local gradient and the ``pmean`` averages
   them. Both give the gradient of the global batch's mean loss. BatchNorm normalises with
   each device's local batch statistics (unsynchronised, as in data-parallel CIFAR code); the
   updated running averages are then averaged.

The mixer is the step's last argument, defaulting to the one given to the factory. Pass it
explicitly to the jitted step to make its numbers traced: a mixer with other ``alpha``, ``r``,
``prob`` or ``label_smoothing`` values then reuses the compiled program (the default, left
out, is baked into the program as a constant).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from msda_jax import losses
from msda_jax.mixer import Mixer
from msda_jax.needs import ModelView
from msda_jax.train import hidden as hidden_lib

#: the counter folded into the step's key for ``method.prepare`` (adversarial noise).
PREPARE_SALT = 0x70726570

Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]
TrainStep = Callable[..., tuple[nnx.State, "OptimizerState", Metrics]]
EvalStep = Callable[[nnx.State, Batch], Metrics]


def decayed(path: tuple[Any, ...], value: Any) -> bool:
  """The weight-decay filter: convolution and dense kernels (``nnx.Param`` named ``kernel``)."""
  del value
  return bool(path) and path[-1] == "kernel"


class OptimizerState(NamedTuple):
  """The optimiser's part of the train state.

  Attributes:
    step: int32 ``[]`` number of updates applied so far (folded into the step's key).
    tx_state: the optax state of the parameters.
  """

  step: jax.Array
  tx_state: optax.OptState


def init_train_state(
  model: nnx.Module, tx: optax.GradientTransformation
) -> tuple[nnx.GraphDef, nnx.State, OptimizerState]:
  """Splits ``model`` into its static graph and its state, and initialises the optimiser.

  Args:
    model: an NNX model (its parameters become ``model_state``; the model is not modified).
    tx: the optax transformation, applied to the ``nnx.Param`` leaves only.

  Returns:
    ``(graphdef, model_state, opt_state)``.

  >>> from msda_jax.train.models import SmallCNN
  >>> graphdef, state, opt = init_train_state(SmallCNN(10, width=4, rngs=nnx.Rngs(0)), optax.sgd(0.1))
  >>> int(opt.step)
  0
  """
  graphdef, model_state = nnx.split(model)
  params = nnx.split_state(model_state, nnx.Param, ...)[0]
  return graphdef, model_state, OptimizerState(jnp.zeros((), jnp.int32), tx.init(params))


def l2_penalty(params: nnx.State, decay_filter: Any = decayed) -> jax.Array:
  """``sum(w ** 2) / 2`` over the parameters selected by ``decay_filter``, float32 ``[]``."""
  selected = nnx.split_state(params, decay_filter, ...)[0]
  squares = [jnp.sum(jnp.square(leaf.astype(jnp.float32))) for leaf in jax.tree.leaves(selected)]
  return 0.5 * sum(squares, jnp.zeros((), jnp.float32))


def _float_images(images: jax.Array) -> jax.Array:
  return images.astype(jnp.float32)


def _targets(labels: jax.Array, num_classes: int) -> jax.Array:
  """Integer ``[B]`` labels to one-hot float32 ``[B, K]``; probability rows pass through."""
  if jnp.issubdtype(labels.dtype, jnp.integer):
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  return labels.astype(jnp.float32)


def clean_loss_input(model: nnx.Module, labels: jax.Array, x: jax.Array) -> jax.Array:
  """The mean cross-entropy of ``model`` on the model input ``x`` against ``labels``."""
  logits = model(x)
  return jnp.mean(optax.softmax_cross_entropy(logits, _targets(labels, logits.shape[-1])))


def _sown(state: nnx.State, name: str) -> Any:
  """The value a model ``sow``ed under ``name`` (the last one, if sown several times), or a clear error."""
  found = [v.get_value() for path, v in nnx.to_flat_state(state) if path[-1] == name]
  if not found:
    raise ValueError(
      f"the method reads the model output {name!r}: the model must sow it "
      f"(self.sow(nnx.Intermediate, {name!r}, value), under `if hasattr(self, '__captures__')`)."
    )
  value = found[-1]
  return value[-1] if isinstance(value, tuple) else value


def sown_output(model: nnx.Module, name: str, x: jax.Array) -> jax.Array:
  """What ``model`` sows under ``name`` in a forward pass on ``x`` (its mode as set), or a clear error."""
  _, sown = nnx.capture(model, nnx.Intermediate)(x)
  return _sown(sown, name)


def make_train_step(
  *,
  graphdef: nnx.GraphDef,
  tx: optax.GradientTransformation,
  mixer: Mixer | None,
  weight_decay: float,
  axis_name: str | None = None,
  decay_filter: Any = decayed,
  preprocess: Callable[[jax.Array], jax.Array] | None = None,
  loss: losses.Loss = losses.cross_entropy,
) -> TrainStep:
  """Builds the pure train step ``(model_state, opt_state, batch, key, mixer) -> (model_state, opt_state, metrics)``.

  Args:
    graphdef: the static model graph from ``init_train_state`` (or ``nnx.split``).
    tx: the optax transformation (e.g. ``make_optimizer(...)``), the one ``opt_state`` was
      initialised with.
    mixer: the default ``Mixer`` (its ``num_classes`` set), or ``None`` for no mixing.
    weight_decay: static coefficient of the L2 term ``weight_decay / 2 * sum(w ** 2)``.
    axis_name: the mesh axis to average gradients, BatchNorm statistics and metrics over,
      when the step runs inside ``jax.shard_map`` (give the mixer ``groups=1``: the step sees
      the local batch); ``None`` on one device or under plain ``jax.jit`` with sharded arrays.
    decay_filter: an NNX filter of the decayed parameters (default: the kernels).
    preprocess: applied to the images after mixing, on device (e.g. uint8 to normalised
      float); default: cast to float32.
    loss: the per-example loss of the logits and the mixed targets, ``[B, K] x [B, K] -> [B]``
      (``msda_jax.losses``; default: soft cross-entropy). Its mean is the ``loss`` metric.

  Returns:
    ``train_step(model_state, opt_state, batch, key, mixer=mixer)`` where ``batch`` holds
    ``"image"`` ``[B, H, W, C]`` and ``"label"`` (integer ``[B]`` or probabilities ``[B, K]``),
    ``key`` is a PRNG key (the same every step is fine: the step number is folded in), and
    ``metrics`` holds float32 scalars ``loss`` (cross-entropy on the mixed targets, plus a
    method's ``auxiliary_loss`` where it has one: SMMix's token and consistency terms),
    ``weight_decay_loss``, ``accuracy`` (top-1 against the targets' argmax) and ``grad_norm``.
    The function does not jit itself.

  >>> import msda_jax
  >>> from msda_jax.train.models import SmallCNN
  >>> tx = optax.sgd(0.1)
  >>> graphdef, state, opt = init_train_state(SmallCNN(10, width=4, in_channels=1, rngs=nnx.Rngs(0)), tx)
  >>> mixer = msda_jax.Mixer(msda_jax.CutMix(), num_classes=10)
  >>> step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=5e-4))
  >>> batch = {"image": jnp.zeros((4, 28, 28, 1)), "label": jnp.arange(4)}
  >>> state, opt, metrics = step(state, opt, batch, jax.random.key(0))
  >>> int(opt.step), sorted(metrics)
  (1, ['accuracy', 'grad_norm', 'loss', 'weight_decay_loss'])
  """
  to_input = preprocess if preprocess is not None else _float_images
  default_mixer = mixer

  def model_view(params: nnx.State, rest: nnx.State, labels: jax.Array, shape: tuple[int, ...]) -> ModelView:
    """The model in inference mode, as a method's ``prepare`` reads it (its clean loss, its
    features at a layer, its head after one), for images of ``shape``."""
    model = nnx.merge(graphdef, params, rest, copy=True)
    model.eval()
    return ModelView(
      loss=functools.partial(clean_loss_input, model, labels),
      to_input=to_input,
      features=functools.partial(hidden_lib.features_at, model),
      head=lambda features, layer: hidden_lib.head_after(model, shape, features, layer),
      attention=functools.partial(sown_output, model, "attention"),
      logits=model,
    )

  def train_step(
    model_state: nnx.State,
    opt_state: OptimizerState,
    batch: Batch,
    key: jax.Array,
    mixer: Mixer | None = default_mixer,
  ) -> tuple[nnx.State, OptimizerState, Metrics]:
    key = jax.random.fold_in(key, opt_state.step)
    if axis_name is not None:
      key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    images, labels = batch["image"], batch["label"]
    params, rest = nnx.split_state(model_state, nnx.Param, ...)
    info, outputs = None, () if mixer is None else mixer.needs().outputs
    inputs: dict[str, Any] = {}
    unmixed = mixer.unmixed_targets(images, labels) if outputs else None  # type: ignore[union-attr]
    hidden = hidden_lib.is_hidden(mixer)
    if mixer is not None and not hidden:
      if mixer.needs().inputs:
        # Its own key, folded from the step's: the mixing draws are those of a step without it.
        key_prepare = jax.random.fold_in(key, PREPARE_SALT)
        inputs = mixer.method.prepare(key_prepare, model_view(params, rest, labels, images.shape), images, labels)  # type: ignore[union-attr]
      images, labels, info = mixer.with_info(key, images, labels, **inputs)
    images = to_input(images)

    def loss_fn(params: nnx.State) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array, nnx.State]]:
      model = nnx.merge(graphdef, params, rest, copy=True)
      model.train()
      if outputs:  # the forward pass with what the model sows
        logits, sown = nnx.capture(model, nnx.Intermediate)(images)
      elif hidden:  # mixed inside the model, at a layer drawn from the method's
        stages = getattr(model, "num_stages", None)
        hook, hidden_targets = hidden_lib.hidden_mixing(mixer, key, labels, stages)  # type: ignore[arg-type]
        logits = model(images, mix=hook)
      else:
        logits = model(images)
      targets = hidden_targets() if hidden else _targets(labels, logits.shape[-1])
      if outputs:
        read = {name: logits if name == "logits" else _sown(sown, name) for name in outputs}
        targets = jax.lax.stop_gradient(mixer.method.relabel(unmixed, info, read))  # type: ignore[union-attr,arg-type]
      cross_entropy = jnp.mean(loss(logits, targets))
      if outputs and hasattr(mixer.method, "auxiliary_loss"):  # type: ignore[union-attr]  # a method's own terms (SMMix's)
        cross_entropy += mixer.method.auxiliary_loss(logits, unmixed, info, read, inputs)  # type: ignore[union-attr]
      if axis_name is not None:
        cross_entropy = jax.lax.pmean(cross_entropy, axis_name)
      penalty = weight_decay * l2_penalty(params, decay_filter)
      correct = jnp.argmax(logits, axis=-1) == jnp.argmax(targets, axis=-1)
      new_rest = nnx.split_state(nnx.state(model), nnx.Param, ...)[1]
      return cross_entropy + penalty, (cross_entropy, penalty, jnp.mean(correct.astype(jnp.float32)), new_rest)

    grads, (cross_entropy, penalty, accuracy, new_rest) = jax.grad(loss_fn, has_aux=True)(params)
    if axis_name is not None:
      grads = jax.lax.pmean(grads, axis_name)
      new_rest = jax.lax.pmean(new_rest, axis_name)
    updates, tx_state = tx.update(grads, opt_state.tx_state, params)
    params = optax.apply_updates(params, updates)
    metrics = {
      "loss": cross_entropy,
      "weight_decay_loss": penalty,
      "accuracy": accuracy,
      "grad_norm": optax.tree.norm(grads),
    }
    if axis_name is not None:
      metrics = jax.lax.pmean(metrics, axis_name)
    new_state = nnx.merge_state(params, new_rest)
    return new_state, OptimizerState(opt_state.step + 1, tx_state), metrics

  return train_step


def make_eval_step(
  *,
  graphdef: nnx.GraphDef,
  axis_name: str | None = None,
  preprocess: Callable[[jax.Array], jax.Array] | None = None,
) -> EvalStep:
  """Builds the pure eval step ``(model_state, batch) -> metrics`` (eval mode, running averages).

  Args:
    graphdef: the static model graph.
    axis_name: the mesh axis to sum the counts over inside ``jax.shard_map``, or ``None``.
    preprocess: applied to the images (default: cast to float32).

  Returns:
    ``eval_step(model_state, batch)`` where ``batch`` holds ``"image"`` ``[B, H, W, C]``, integer
    ``"label"`` ``[B]`` and optionally ``"mask"`` ``[B]`` (0 for padding examples); ``metrics``
    holds float32 sums over the (unmasked) batch: ``correct`` (top-1), ``loss``
    (cross-entropy) and ``count``. Divide the totals over the dataset by ``count``.

  >>> from msda_jax.train.models import SmallCNN
  >>> graphdef, state = nnx.split(SmallCNN(10, width=4, in_channels=1, rngs=nnx.Rngs(0)))
  >>> metrics = make_eval_step(graphdef=graphdef)(state, {"image": jnp.zeros((4, 28, 28, 1)), "label": jnp.arange(4)})
  >>> float(metrics["count"])
  4.0
  """
  to_input = preprocess if preprocess is not None else _float_images

  def eval_step(model_state: nnx.State, batch: Batch) -> Metrics:
    model = nnx.merge(graphdef, model_state)
    model.eval()
    logits = model(to_input(batch["image"]))
    labels = batch["label"]
    mask = batch["mask"].astype(jnp.float32) if "mask" in batch else jnp.ones(labels.shape, jnp.float32)
    per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    metrics = {"correct": jnp.sum(correct * mask), "loss": jnp.sum(per_example * mask), "count": jnp.sum(mask)}
    if axis_name is not None:
      metrics = jax.lax.psum(metrics, axis_name)
    return metrics

  return eval_step
