"""Every method spec, by name, for the conformance suite (one module: imported by the tests)."""

METHOD_SPECS = [
  "mixup",
  "cutmix",
  "cutmix(placement='inside')",
  "stochastic_mixup_cutmix",
  "hmix",
  "hmix(r_alpha=0.5)",
  "gmix",
  "gmix(scale='text', symmetric=False)",
  "bernoulli",
  "fmix",
  "resizemix",
  "saliencymix",
  "puzzlemix(grid_sizes=(2, 4))",
  "smoothmix",
  "gridmix(aspect=0.5, cells=(1, 4))",
  "specmix",
  "videomix(kind='spatiotemporal')",
  "manifold_mixup",
  "patchup(block=3, mode='hard')",
  "mixture(methods=('mixup', 'cutmix(alpha=0.5)'), probs=(0.4, 0.6))",
]
