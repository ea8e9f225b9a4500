r"""The main job's regime with a vision transformer: ``vit_digits`` on the same 500 embedded MNIST digits.

``arg`` is ``"<method>"`` or ``"<method>,<seed>"``, method one of ``METHODS``. Data, steps, batch
and schedule are ``mnist_compare``'s (500 training images of the 16 x 16 MNIST subset, 300 steps
of 100 images, SGD with Nesterov momentum 0.9, cosine decay, no weight decay); the network is
``vit_digits`` (16 tokens of 4 x 4 pixels, width 64, 4 blocks of 2 heads: 205,002 parameters)
with a 30-step warm-up and learning rate 0.05 (``python -m experiments.sweep`` style choice:
vanilla only, one seed, before any mixing run).

The methods: the paper's (Table 2's hyper-parameters), CutMix with its box on whole tokens
(``patch_aligned``), and the ViT mixers that read the model's attention: TransMix over the
token-aligned box (its label weight re-read after the forward pass, ``ratio`` 0.5 as the
reference), and TokenMix (token blocks of the partner, labels from the class-token attention of
the unmixed batch, the reference's constant ``lam = 0.5``; ``min_tokens`` 1 of the 16 tokens,
near the reference's share, 14 of its 196), and MixPro (a random 4 x 4 grid of cells, the
reference's grid at 224 x 224 with 56-pixel cells, labels blended from area to attention by the
model's fit), and SMMix (the partner's most attended square of 1 to 3 tokens a side over the
image's least attended one, with its token-label and consistency losses; the ViT gets its token
head).

Command (every method, three seeds, the table)::

  python -m experiments.compare --config vit --out outputs/compare_vit

or one run::

  python -m experiments.train --config experiments/configs/mnist_vit.py:transmix,0 \
    --workdir /tmp/msda/vit/transmix-s0
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common, mnist_compare

PATCH = 4
METHODS = {
  "none": "none",
  "mixup": mnist_compare.METHODS["mixup"],
  "cutmix": mnist_compare.METHODS["cutmix"],
  "hmix": mnist_compare.METHODS["hmix"],
  "gmix": mnist_compare.METHODS["gmix"],
  "patch_aligned": f"patch_aligned(method='cutmix(alpha=1.0)', patch={PATCH})",
  "transmix": f"transmix(method=\"patch_aligned(method='cutmix(alpha=1.0)', patch={PATCH})\", ratio=0.5)",
  "tokenmix": f"tokenmix(patch={PATCH}, mask='block', min_tokens=1)",
  "mixpro": f"mixpro(alpha=1.0, cell={PATCH})",
  "smmix": f"smmix(patch={PATCH})",
}
ARGS = tuple(METHODS)


def get_config(arg: str = "transmix,0") -> ml_collections.ConfigDict:
  """``vit_digits`` on the MNIST subset with the method (and seed) that ``arg`` names."""
  method, seed = common.parse_arg(arg if "," in arg else f"{arg},0", [("method", tuple(METHODS)), ("seed", None)])
  if not seed.isdigit():
    raise ValueError(f"config arg {arg!r}: the seed must be a non-negative integer; got {seed!r}.")
  config = mnist_compare.get_config(f"none,{seed}")
  config.model = "vit_digits"
  config.model_width = 64
  config.method = METHODS[method]
  config.model_token_head = method == "smmix"
  config.learning_rate = 0.05
  config.warmup_epochs = 6  # 30 steps
  return config
