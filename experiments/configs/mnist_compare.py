r"""The main job's regime: a small CNN on 500 embedded MNIST digits at 16 x 16, where plain training overfits.

``arg`` is ``"<method>"`` or ``"<method>,<seed>"``, method one of ``METHODS``, with Table 2's
per-method hyper-parameters (alpha 1, r 0.5 for HMix, alpha 0.5 for GMix, PuzzleMix's reference
settings with grid sides 2, 4 and 8: its 16 would be single pixels on 16 x 16 images). The
dataset (``mnist_subset``: the 5,000-image MNIST subset shipped with the ``[train]`` extra,
no download) is resized to 16 x 16 (bilinear, antialiased); the runs train on a fixed random
subset of 500 of its 4,000 training images (``train_examples``, the same for every seed and
method) and are tested on its 1,000 test images.

The network is ``small_cnn`` at width 8 (three 3 x 3 convolutions of 8, 16 and 32 channels,
6,146 parameters), trained for 300 steps of 100 images (60 epochs) with SGD, learning rate 0.1,
Nesterov momentum 0.9, cosine decay, no weight decay: about 5 s per run on 2 CPU cores with
compilation (PuzzleMix longer: its saliency pass and masks).

How the regime was chosen (``python -m experiments.sweep``, vanilla training only, one seed, the
rule fixed before it ran: the largest gap between test and train NLL among settings whose
vanilla model reaches 90 % test accuracy and whose run takes at most 12 s; its docstring). The
sweep, on 2 CPU cores (accuracies in %, NLL in nats, wall seconds with compilation)::

  examples width  wd     steps  train acc  test acc  train NLL  test NLL  gap    s
   500     8      0      150    100.0      90.6      0.055      0.320     0.264   8.0
   500     8      0      300    100.0      90.6      0.009      0.310     0.301   5.2  <- chosen
   500     8      5e-4   150    100.0      90.6      0.054      0.318     0.264   4.3
   500     8      5e-4   300    100.0      90.7      0.010      0.302     0.292   6.6
   500    16      0      150    100.0      94.1      0.017      0.200     0.183   5.8
   500    16      0      300    100.0      94.2      0.004      0.175     0.171   6.5
   500    16      5e-4   150    100.0      94.2      0.017      0.198     0.181   4.9
   500    16      5e-4   300    100.0      94.1      0.005      0.183     0.178   9.1
  1000     8      0      150     98.9      93.0      0.109      0.243     0.134   6.1
  1000     8      0      300    100.0      94.4      0.016      0.181     0.165   6.7
  1000     8      5e-4   150     98.9      93.1      0.105      0.240     0.135   6.4
  1000     8      5e-4   300    100.0      95.0      0.018      0.178     0.160   7.5
  1000    16      0      150     99.9      94.5      0.034      0.159     0.125   7.4
  1000    16      0      300    100.0      95.6      0.006      0.130     0.123   9.1
  1000    16      5e-4   150     99.9      94.8      0.034      0.157     0.123   6.9
  1000    16      5e-4   300    100.0      95.6      0.007      0.129     0.123  10.5
  2000     8      0      150     96.8      94.0      0.141      0.211     0.070   6.3
  2000     8      0      300     99.8      95.3      0.033      0.145     0.112  13.1
  2000     8      5e-4   150     97.0      94.0      0.142      0.210     0.068  13.3
  2000     8      5e-4   300     99.9      95.8      0.034      0.143     0.108  15.9
  2000    16      0      150     99.4      96.9      0.066      0.122     0.056   7.8
  2000    16      0      300    100.0      97.2      0.012      0.091     0.078  10.0
  2000    16      5e-4   150     99.4      97.0      0.065      0.123     0.058   6.8
  2000    16      5e-4   300    100.0      97.1      0.013      0.098     0.085   9.2
  4000     8      0      150     95.9      95.3      0.177      0.200     0.023   6.0
  4000     8      0      300     98.4      96.3      0.076      0.114     0.038   7.3
  4000     8      5e-4   150     95.9      95.3      0.177      0.194     0.018   5.2
  4000     8      5e-4   300     98.5      96.3      0.077      0.119     0.042   5.2
  4000    16      0      150     98.3      96.4      0.097      0.125     0.027   6.6
  4000    16      0      300     99.7      97.7      0.030      0.081     0.051   9.3
  4000    16      5e-4   150     98.2      96.5      0.097      0.125     0.028   7.5
  4000    16      5e-4   300     99.7      97.2      0.031      0.084     0.053  10.8

Every 500-example setting fits its training set (100 %), and the narrow network leaves the
largest gap: that is where a regulariser has something to do. No mixing method was trained in
the sweep.

Command (all methods, three seeds, every measurement, the tables, the figure and Figure 3)::

  python -m experiments.compare --out outputs/compare

or one run::

  python -m experiments.train --config experiments/configs/mnist_compare.py:hmix,0 \
    --workdir /tmp/msda/mnist/hmix-s0

The measured table is in the README (``make main``). Every method of the library in the same
regime (``EXTRA_METHODS`` beside these; ``make compare-all``)::

  python -m experiments.compare --all-methods --out outputs/compare
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common, default, table2

# Table 2's methods; PuzzleMix's grid sides leave blocks of >= 2 pixels on 16 x 16 images.
METHODS = {**table2.METHODS, "puzzlemix": table2.METHODS["puzzlemix"].replace("(2, 4, 8, 16)", "(2, 4, 8)")}
# Every other method of the library, with its defaults (the second command: ``--all-methods``).
# VideoMix mixes videos and has no place here; the hidden-layer methods mix at the small CNN's
# layers 0-2 (its input and its first two stages); Attentive CutMix reads the small CNN's last
# stage (4 x 4 on 16 x 16 images) on a 4 x 4 grid, k cells from lam (CutMix's area law); Co-Mixup
# solves partitions of 20 (the reference's size for batches of 100) on its default 4 x 4 blocks;
# AlignMix aligns the small CNN's last stage (4 x 4 positions on 16 x 16 images).
EXTRA_METHODS = {
  "bernoulli": "bernoulli(alpha=1.0)",
  "fmix": "fmix(alpha=1.0, decay=3.0)",
  "resizemix": "resizemix",
  "saliencymix": "saliencymix(alpha=1.0)",
  "attentive_cutmix": "attentive_cutmix(alpha=1.0, top_k=None, grid=4)",
  "snapmix": "snapmix(alpha=1.0)",
  "guidedmixup": "guidedmixup(variant='ap')",
  "comixup": "comixup(part=20)",
  "smoothmix": "smoothmix",
  "gridmix": "gridmix(alpha=1.0, cells=(2, 6))",
  "specmix": "specmix",
  "ricap": "ricap(beta=0.3)",
  "k_cutmix": "k_cutmix(k=3, alpha=1.0)",
  "kmix": "mix_k_batch(k=3, alpha=1.0)",
  "mixture": "mixture(methods=('mixup', 'cutmix'), probs=(0.5, 0.5))",
  "manifold_mixup": "manifold_mixup(alpha=2.0, layers=(0, 1, 2))",
  "patchup": "patchup(alpha=2.0, gamma=0.9, block=3, layers=(0, 1, 2))",
  "alignmix": "alignmix(alpha=2.0)",
}
ALL_METHODS = {**METHODS, **EXTRA_METHODS}
ARGS = tuple(METHODS)


def get_config(arg: str = "hmix,0") -> ml_collections.ConfigDict:
  """The small CNN on the MNIST subset with the method (and seed) that ``arg`` names."""
  fields = [("method", tuple(ALL_METHODS)), ("seed", None)]
  method, seed = common.parse_arg(arg if "," in arg else f"{arg},0", fields)
  if not seed.isdigit():
    raise ValueError(f"config arg {arg!r}: the seed must be a non-negative integer; got {seed!r}.")
  config = default.get_config()
  config.model = "small_cnn"
  config.model_width = 8
  config.dataset = "mnist_subset"
  config.num_classes = 10
  config.image_size = 16
  config.augment = "none"
  config.method = ALL_METHODS[method]
  config.seed = int(seed)
  config.train_examples = 500
  config.num_epochs = 60  # 300 steps of 100 images
  config.batch_size = 100
  config.eval_batch_size = 1000
  config.learning_rate = 0.1
  config.weight_decay = 0.0
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 1
  config.log_every_steps = 25
  config.progress = False
  return config
