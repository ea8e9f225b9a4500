"""The theory of the unified MSDA analysis: mask laws and the coefficients ``a_jk`` (Eq. 9).

This namespace holds the paper-facing names (laws, coefficients and their closed forms, Figure 4's
maps, Theorem 1's regularisers, Eq. 4's exact loss, Theorem 2, Eq. 12); the building blocks they
are made of (Kronecker factors, quadratures, per-axis parts) stay in their modules.

``laws`` builds the joint laws of ``(lam, M)``; ``moments`` estimates ``E[1 - M]`` and ``a_jk``
by Monte Carlo for any law; ``enumeration`` computes them exactly for box and GMix masks at a
fixed ``lam``; ``family_atoms`` gives exact atoms for every family whose law is finite at a fixed
``lam`` (CutMix, HMix, GMix, Stochastic, Mixup, Bernoulli) and ``method_atoms`` /
``method_coefficients`` for a library method (realised label weight by default, Monte Carlo for
the others); ``regions`` gives the exact moments of
GridMix, VideoMix, SpecMix, SmoothMix and RICAP; ``hidden_layer`` Theorem 1 at a hidden layer (the head, the
features, PatchUp's exact moments); ``closed_forms`` gives the exact formulas (Mixup, Bernoulli, CutMix, Eq. 10,
Stochastic, HMix, GMix on the plane); ``lam_average`` averages over ``Beta(a, b)`` or ``D~``;
``translation`` computes the maps ``E_i a_{i, i+p}`` of Figure 4; ``regularizers`` computes
Theorem 1's R1-R3 (printed and general forms, exact and scalable paths); ``atoms`` and
``exact_loss`` give the exact MSDA loss (Eq. 4); ``theorem2`` builds masks for a target
``a_jk``; ``gradprod`` computes Eq. (12); ``adversarial`` measures Theorem 3 (an l2 attack
against the approximate MSDA loss); ``design`` fits a bounded mask law (a mixture of library
methods, ``design_mask_law``) to a target ``a_jk`` or translation map. The entry points that
take a model and labels check the model's output and the labels against ``loss`` before any
work (``_inputs``).
"""

from msda_jax.theory.adversarial import (
  Attack,
  Crossing,
  ImpliedRadius,
  Theorem3Check,
  adversarial_loss,
  crossing_radius,
  implied_radius,
  pgd_l2,
  quadratic_adversarial_loss,
  quadratic_crossing_radius,
  robust_accuracy,
  theorem3_check,
)
from msda_jax.theory.atoms import (
  MaskAtoms,
  bernoulli_atoms,
  box_atoms,
  mixup_atoms,
  printed_coefficients,
  printed_mean,
  realised_atoms,
  sampled_atoms,
  swap_coefficients,
)
from msda_jax.theory.closed_forms import (
  Eq10Difference,
  bernoulli_coefficients,
  cutmix_coefficients,
  eq10_difference,
  eq10_printed_coefficients,
  gmix_plane_coefficients,
  hmix_coefficients,
  mixup_coefficients,
  stochastic_coefficients,
)
from msda_jax.theory.design import Design, design_mask_law
from msda_jax.theory.enumeration import (
  ExactMoments,
  box_masks,
  box_moments,
  enumerated_moments,
  gmix_masks,
)
from msda_jax.theory.exact_loss import LossEstimate, msda_loss, msda_loss_estimate
from msda_jax.theory.family_atoms import (
  gmix_atoms,
  hmix_atoms,
  method_atoms,
  method_coefficients,
  mixture_atoms,
  stochastic_atoms,
)
from msda_jax.theory.gradprod import (
  model_partial_grad_prod,
  partial_grad_prod,
  pixel_gradients,
)
from msda_jax.theory.hidden_layer import features_at, head_at, patchup_moments
from msda_jax.theory.lam_average import (
  average_piecewise,
  average_smooth,
  box_lam_edges,
  cutmix_lam_terms,
)
from msda_jax.theory.laws import Law, MaskLaw, fixed_lam_law, msda_law, printed_law, source_law, swap_law
from msda_jax.theory.losses import loss_value, residual
from msda_jax.theory.moments import MaskMoments, mask_moments
from msda_jax.theory.regions import (
  gridmix_moments,
  gridmix_translation_map,
  region_moments,
  ricap_moments,
  ricap_translation_map,
  smoothmix_moments,
  smoothmix_translation_map,
  specmix_moments,
  specmix_translation_map,
  videomix_moments,
)
from msda_jax.theory.regularizers import (
  Coefficients,
  Regularizers,
  approximate_msda_loss,
  empirical_loss,
  regularizers_exact,
  regularizers_sampled,
)
from msda_jax.theory.theorem2 import (
  Theorem2Check,
  sampled_coefficients,
  theorem2_check,
  theorem2_mask,
  theorem2_printed_mask,
)
from msda_jax.theory.translation import (
  TranslationMap,
  cutmix_translation_map,
  distance_profile,
  gmix_plane_translation_map,
  hmix_translation_map,
  matrix_translation_map,
  mixup_translation_map,
  stochastic_translation_map,
  translation_map_monte_carlo,
  translation_map_of_masks,
)

__all__ = [
  "Attack",
  "Coefficients",
  "Crossing",
  "Design",
  "Eq10Difference",
  "ExactMoments",
  "ImpliedRadius",
  "Law",
  "LossEstimate",
  "MaskAtoms",
  "MaskLaw",
  "MaskMoments",
  "Regularizers",
  "Theorem2Check",
  "Theorem3Check",
  "TranslationMap",
  "adversarial_loss",
  "approximate_msda_loss",
  "average_piecewise",
  "average_smooth",
  "bernoulli_atoms",
  "bernoulli_coefficients",
  "box_atoms",
  "box_lam_edges",
  "box_masks",
  "box_moments",
  "crossing_radius",
  "cutmix_coefficients",
  "cutmix_lam_terms",
  "cutmix_translation_map",
  "design_mask_law",
  "distance_profile",
  "empirical_loss",
  "enumerated_moments",
  "eq10_difference",
  "eq10_printed_coefficients",
  "features_at",
  "fixed_lam_law",
  "gmix_atoms",
  "gmix_masks",
  "gmix_plane_coefficients",
  "gmix_plane_translation_map",
  "gridmix_moments",
  "gridmix_translation_map",
  "head_at",
  "hmix_atoms",
  "hmix_coefficients",
  "hmix_translation_map",
  "implied_radius",
  "loss_value",
  "mask_moments",
  "matrix_translation_map",
  "method_atoms",
  "method_coefficients",
  "mixture_atoms",
  "mixup_atoms",
  "mixup_coefficients",
  "mixup_translation_map",
  "model_partial_grad_prod",
  "msda_law",
  "msda_loss",
  "msda_loss_estimate",
  "partial_grad_prod",
  "patchup_moments",
  "pgd_l2",
  "pixel_gradients",
  "printed_coefficients",
  "printed_law",
  "printed_mean",
  "quadratic_adversarial_loss",
  "quadratic_crossing_radius",
  "realised_atoms",
  "region_moments",
  "regularizers_exact",
  "regularizers_sampled",
  "residual",
  "ricap_moments",
  "ricap_translation_map",
  "robust_accuracy",
  "sampled_atoms",
  "sampled_coefficients",
  "smoothmix_moments",
  "smoothmix_translation_map",
  "source_law",
  "specmix_moments",
  "specmix_translation_map",
  "stochastic_atoms",
  "stochastic_coefficients",
  "stochastic_translation_map",
  "swap_coefficients",
  "swap_law",
  "theorem2_check",
  "theorem2_mask",
  "theorem2_printed_mask",
  "theorem3_check",
  "translation_map_monte_carlo",
  "translation_map_of_masks",
  "videomix_moments",
]
