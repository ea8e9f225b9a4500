r"""A quick comparison on real data: the small CNN on the embedded 5,000-image MNIST subset.

``arg`` is ``"<method>"`` or ``"<method>,<seed>"``, method one of ``common.METHOD_NAMES``, with
Table 2's per-method hyper-parameters (alpha 1, r 0.5 for HMix, alpha 0.5 for GMix). The
dataset (``mnist_subset``: 4,000 training and 1,000 test images, 28 x 28 x 1, 10 classes)
ships with the ``[train]`` extra, so a run needs no download.

Sizing: one run should take about 25 s on 2 CPU cores. Assuming the small CNN trains at about
1,500 images/s at batch 128 there, and leaving about 4 s for compilation and evaluation,
8 epochs (31 steps of 128 images each, 248 steps, 31,744 images, about 21 s) fit. If the
measured ``images_per_second`` in ``summary.json`` differs much, scale ``num_epochs`` by it.
The schedule is far shorter than the paper's, and mixing regularises, so it can cost accuracy
this early; the comparison shows the methods on real data, not the paper's ranking.

Command (all methods, three seeds, then the table)::

  for m in none mixup cutmix stochastic_mixup_cutmix hmix gmix; do for s in 0 1 2; do
    python -m experiments.train --config experiments/configs/mnist_compare.py:$m,$s \
      --workdir /tmp/msda/mnist/$m-s$s
  done; done
  python -m experiments.aggregate '/tmp/msda/mnist/*' --out /tmp/msda/mnist_table

Expected: no paper number to compare with; an estimate, not a measurement, is 95-98 % test
accuracy for every method.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common, default, table2

METHODS = table2.METHODS
ARGS = tuple(METHODS)


def get_config(arg: str = "hmix,0") -> ml_collections.ConfigDict:
  """The small CNN on the MNIST subset with the method (and seed) that ``arg`` names."""
  fields = [("method", tuple(METHODS)), ("seed", None)]
  method, seed = common.parse_arg(arg if "," in arg else f"{arg},0", fields)
  if not seed.isdigit():
    raise ValueError(f"config arg {arg!r}: the seed must be a non-negative integer; got {seed!r}.")
  config = default.get_config()
  config.model = "small_cnn"
  config.dataset = "mnist_subset"
  config.num_classes = 10
  config.image_size = 28
  config.augment = "none"
  config.method = METHODS[method]
  config.seed = int(seed)
  config.num_epochs = 8
  config.batch_size = 128
  config.eval_batch_size = 1000
  config.learning_rate = 0.1
  config.weight_decay = 5e-4
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 1
  config.log_every_steps = 25
  config.progress = False
  return config
