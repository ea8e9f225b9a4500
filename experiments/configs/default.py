"""The default config: every field the trainer reads, set to the paper's CIFAR-100 setting.

The paper (Section 5) states 300 epochs of SGD with learning rate 0.2 on CIFAR-100; the batch
size, weight decay and schedule are not in the text, so they follow common CIFAR practice:
batch 128, weight decay 5e-4, Nesterov momentum 0.9, cosine decay without warm-up. Other
configs import this one and override fields; every field can also be overridden from the
command line (``--config.learning_rate=0.1``).

Command (PreActResNet-18, no mixing, on CIFAR-100)::

  python -m experiments.train --config experiments/configs/default.py --workdir /tmp/msda/default

Expected: about 76.7 % test accuracy (the paper's Table 2, PreActRN18, vanilla: 76.73).
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

AUGMENTS = ("cifar", "imagenet", "scenario1", "scenario2", "none")
SCHEDULES = ("cosine", "step")


def get_config() -> ml_collections.ConfigDict:
  """The full set of fields, with the CIFAR-100 PreActResNet-18 vanilla run as values."""
  config = ml_collections.ConfigDict()

  # Model: a name of ``msda_jax.train.models.MODELS``; width None keeps the published size.
  config.model = "preact_resnet18"
  config.model_width = config_dict.placeholder(int)
  # Options of models that take them (``small_cnn``): the activation and the pooling; None keeps
  # the model's default. ``"softplus"`` and ``"avg"`` make the network smooth (the layout check).
  config.model_activation = config_dict.placeholder(str)
  config.model_pool = config_dict.placeholder(str)
  # ViTs: a second classifier on the patch tokens (SMMix trains it); None keeps it off.
  config.model_token_head = config_dict.placeholder(bool)

  # Data: ``augment`` is one of AUGMENTS; ``data_dir`` None uses the dataset loader's default.
  config.dataset = "cifar100"
  config.num_classes = 100
  config.image_size = 32
  config.augment = "cifar"
  config.data_dir = config_dict.placeholder(str)
  # Area range (low, high) overriding that of a random-resized-crop ``augment``; grain workers
  # per process (0 reads in the training process).
  config.crop_area = config_dict.placeholder(tuple)
  config.data_workers = 0
  # Train on a fixed random subset of this many training records (<= 0: all of them), the same
  # subset for every seed and method (``experiments.input_pipeline.subset_indices``).
  config.train_examples = -1

  # Mixing: a ``msda_jax.from_string`` spec ("none" trains on one-hot labels) and the Mixer's
  # mode ("batch": one lam and mask per batch, as the official code), pairing (unset: the
  # method's default, "reverse", or "roll" for k-sample mixing) and probability.
  config.method = "none"
  config.mix_mode = "batch"
  config.mix_pairing = config_dict.placeholder(str)
  config.mix_transport_k = 8  # mix_pairing="transport": chunks of k examples matched by optimal transport
  config.mix_prob = 1.0
  config.label_smoothing = 0.0
  # The loss of the mixed targets (``msda_jax.losses``): "cross_entropy", or DecoupleMix's
  # "decoupled_mixup" with weight ``loss_eta`` (the reference's 0.1).
  config.loss = "cross_entropy"
  config.loss_eta = 0.1

  # Optimisation: SGD with Nesterov momentum; weight decay is an L2 term on the kernels.
  # ``num_train_steps`` -1 derives the steps from ``num_epochs``; ``batch_size`` is global.
  config.num_epochs = 300
  config.num_train_steps = -1
  config.batch_size = 128
  config.eval_batch_size = 1000
  config.learning_rate = 0.2
  config.schedule = "cosine"
  config.warmup_epochs = 0
  config.momentum = 0.9
  config.nesterov = True
  config.weight_decay = 5e-4

  # Devices: -1 uses every device of every process (several processes need -1); BatchNorm
  # statistics per device (False, as data-parallel CIFAR code) or over the global batch (True).
  config.num_devices = -1
  config.sync_batch_norm = False

  # Bookkeeping.
  config.seed = 0
  config.checkpoint_every_steps = 5000
  config.keep_checkpoints = 2
  config.log_every_steps = 100
  config.eval_every_steps = 0  # 0: evaluate once, at the end
  config.progress = True
  return config
