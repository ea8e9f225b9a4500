"""Code paths chosen by the platform a computation is compiled for (CPU or an accelerator).

A few operations have a CPU form and an accelerator form with equal results:

* the one mask of a batch (or 1 where the batch is not mixed) is chosen by a conditional on the
  CPU, which makes it apart from the mixing pass (XLA:CPU fuses nothing across a conditional, so
  a mask computed per pixel is not recomputed for every example and channel), and by a
  ``where`` on an accelerator;
* per-example work runs a few examples at a time on the CPU (``_batched.map_in_chunks``) and as
  one ``vmap`` on an accelerator, where a loop of small steps would serialise the device;
* ResizeMix's resample gathers the few nonzero weights on the CPU and is one dense contraction on
  an accelerator;
* FMix's threshold (the ``round(lam |S|)``-th largest value of its field) is a counting search
  (a loop of a few passes) on the CPU and one sort on an accelerator;
* ``pairing="derange"`` draws its rejection rounds in a loop on the CPU (about 3) and side by
  side on an accelerator, the first success selected (the same derangement);
* the mixture's component is one ``lax.switch`` branch on the CPU and a select over every
  component's draw on an accelerator (the same draw). Per example (traced inside ``per_example``)
  it is the select on every platform: under ``vmap`` a switch on a per-example index is a select
  over every branch anyway, and inside ``jax.shard_map`` JAX 0.10's batching of that switch fails
  on a branch's constants (a ``pvary`` of a value that already varies).

``by_platform`` picks the form with ``jax.lax.platform_dependent``: the choice is made when the
program is lowered, for the platform it is compiled for (not JAX's default backend), and the
other form is not part of the compiled program. The ``platform`` argument (``Mixer(platform=...)``,
a static option) forces one form (``"cpu"`` or ``"accelerator"``) on any machine: the programs
are then those of that form, the values the same. ResizeMix's resample and FMix's threshold
always follow the compiled platform.

A single-platform export (``jax.export`` for ``["cuda"]``) keeps ``platform_dependent``'s choice
as a ``case`` on a constant index holding only that platform's form; JAX resolves it before the
program is compiled, so the device runs no branch for it (``benchmarks/structure.py`` counts them
apart).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

#: the forms: ``"auto"`` (by the platform compiled for), or one forced everywhere.
PLATFORMS = ("auto", "cpu", "accelerator")


_FORCED: contextvars.ContextVar[str] = contextvars.ContextVar("msda_jax_platform", default="auto")
_PER_EXAMPLE: contextvars.ContextVar[bool] = contextvars.ContextVar("msda_jax_per_example", default=False)


@contextlib.contextmanager
def per_example() -> Iterator[None]:
  """While tracing inside this context, ``is_per_example()`` is true: the draws traced are one
  example's, mapped over the batch (``msda_jax.draws.draw_examples``)."""
  token = _PER_EXAMPLE.set(True)
  try:
    yield
  finally:
    _PER_EXAMPLE.reset(token)


def is_per_example() -> bool:
  """Whether the draw being traced is one example's of a batch (inside ``per_example``)."""
  return _PER_EXAMPLE.get()


@contextlib.contextmanager
def forced(platform: str) -> Iterator[None]:
  """While tracing inside this context, ``by_platform`` calls without a ``platform`` use this one.

  ``Mixer`` traces its call inside ``forced(mixer.platform)``, so its ``platform`` option reaches
  the forms of the methods it calls (FMix's threshold, the mixture's switch).
  """
  token = _FORCED.set(platform)
  try:
    yield
  finally:
    _FORCED.reset(token)


def by_platform(
  cpu: Callable[..., Any], accelerator: Callable[..., Any], *operands: Any, platform: str | None = None
) -> Any:
  """``cpu(*operands)`` in a program compiled for the CPU, ``accelerator(*operands)`` otherwise.

  Both functions must return the same shapes and dtypes. ``platform`` (static, one of
  ``PLATFORMS``, or ``None`` for the one ``forced`` sets, ``"auto"`` outside it): ``"auto"``
  traces both and lets the compiled platform choose; ``"cpu"`` or ``"accelerator"`` traces only
  that form.
  """
  if platform is None:
    platform = _FORCED.get()
  if platform != "auto":
    return (cpu if platform == "cpu" else accelerator)(*operands)
  return jax.lax.platform_dependent(*operands, cpu=cpu, default=accelerator)


def varying_like(value: jax.Array, *sources: jax.Array) -> jax.Array:
  """``value`` (float32) made from ``sources``, so that it varies over the same mesh axes.

  Inside ``jax.shard_map`` the branches of a conditional or the carry of a loop must vary over
  the same mesh axes as the values they are combined with; a constant does not. Adding a zero
  computed from the sources gives the constant their variance; the zero is exact (``0 * x``
  for finite ``x``, selected away otherwise).
  """
  zero = jnp.float32(0.0)
  for source in sources:
    if jax.dtypes.issubdtype(source.dtype, jax.dtypes.prng_key):
      source = jax.random.key_data(source)
    part = jnp.ravel(source)[0].astype(jnp.float32)
    zero = zero + jnp.where(False, part, jnp.float32(0.0))
  return jnp.asarray(value, jnp.float32) + zero
