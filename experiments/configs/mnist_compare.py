r"""A quick comparison on real data: the small CNN on the embedded 5,000-image MNIST subset.

``arg`` is ``"<method>"`` or ``"<method>,<seed>"``, method one of ``METHODS``, with Table 2's
per-method hyper-parameters (alpha 1, r 0.5 for HMix, alpha 0.5 for GMix, PuzzleMix's reference
settings with grid sides 2, 4, 7 and 14, which divide 28). The
dataset (``mnist_subset``: 4,000 training and 1,000 test images, 28 x 28 x 1, 10 classes)
ships with the ``[train]`` extra, so a run needs no download.

The network is ``small_cnn`` at width 16 (three 3 x 3 convolutions of 16, 32 and 64 channels,
24,058 parameters), trained for 6 epochs (186 steps of 128 images) with SGD, learning rate 0.1
and cosine decay: on 2 CPU cores a step takes about 70 ms (1,800 images/s) and a run about
20 s with compilation and evaluation (a PuzzleMix run about 50 s: its saliency pass and masks),
so ``experiments/compare.py`` (7 methods x 3 seeds) takes about 9 minutes. The schedule is far
shorter than the paper's, and mixing regularises, so it costs accuracy this early; the comparison
shows the methods on real data, not the paper's ranking.

Command (all methods, three seeds, the table, the plot and Figure 3)::

  python -m experiments.compare --out outputs/compare

or one run::

  python -m experiments.train --config experiments/configs/mnist_compare.py:hmix,0 \
    --workdir /tmp/msda/mnist/hmix-s0

Expected (measured, 3 seeds, mean ± std, 2-core CPU): vanilla 94.5 ± 0.4 % test accuracy,
Mixup 92.0 ± 0.5, CutMix 88.2 ± 1.5, Stochastic Mixup & CutMix 90.9 ± 1.4, HMix 91.6 ± 1.2,
GMix 93.3 ± 0.4, PuzzleMix 92.7 ± 0.9 (the table in the README).
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common, default, table2

# Table 2's methods; PuzzleMix's grid sides divide 28 (the reference's {2, 4, 8, 16} divide 32).
METHODS = {**table2.METHODS, "puzzlemix": table2.METHODS["puzzlemix"].replace("(2, 4, 8, 16)", "(2, 4, 7, 14)")}
ARGS = tuple(METHODS)


def get_config(arg: str = "hmix,0") -> ml_collections.ConfigDict:
  """The small CNN on the MNIST subset with the method (and seed) that ``arg`` names."""
  fields = [("method", tuple(METHODS)), ("seed", None)]
  method, seed = common.parse_arg(arg if "," in arg else f"{arg},0", fields)
  if not seed.isdigit():
    raise ValueError(f"config arg {arg!r}: the seed must be a non-negative integer; got {seed!r}.")
  config = default.get_config()
  config.model = "small_cnn"
  config.model_width = 16
  config.dataset = "mnist_subset"
  config.num_classes = 10
  config.image_size = 28
  config.augment = "none"
  config.method = METHODS[method]
  config.seed = int(seed)
  config.num_epochs = 6
  config.batch_size = 128
  config.eval_batch_size = 1000
  config.learning_rate = 0.1
  config.weight_decay = 5e-4
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 1
  config.log_every_steps = 25
  config.progress = False
  return config
