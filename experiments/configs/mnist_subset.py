"""Small CNN with CutMix on the embedded 5,000-image MNIST subset: a run that needs no download.

    python experiments/train.py --config experiments/configs/mnist_subset.py --workdir /tmp/mnist_subset

Expected: about 97% top-1 test accuracy on the 1,000 held-out digits after 10 epochs (a couple
of minutes on a laptop CPU).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """The default configuration; every field of ``experiments/train.py``."""
  config = ml_collections.ConfigDict()
  config.model = "small_cnn"
  config.model_width = 16
  config.dataset = "mnist_subset"
  config.num_classes = 10
  config.image_size = 28
  config.method = "cutmix"
  config.mix_mode = "batch"
  config.mix_pairing = "reverse"
  config.mix_prob = 1.0
  config.label_smoothing = 0.0
  config.num_epochs = 10
  config.num_train_steps = -1
  config.batch_size = 128
  config.eval_batch_size = 500
  config.learning_rate = 0.1
  config.schedule = "cosine"
  config.warmup_epochs = 0
  config.momentum = 0.9
  config.nesterov = True
  config.weight_decay = 5e-4
  config.sync_batch_norm = False
  config.num_devices = -1
  config.seed = 0
  config.checkpoint_every_steps = 100
  config.keep_checkpoints = 2
  config.log_every_steps = 20
  config.progress = False
  return config
