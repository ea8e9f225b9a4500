"""One compiled program for a theory routine that closes over a user's callable (a model, a law).

Called eagerly, a ``jax.vmap`` over a model or a mask law runs primitive by primitive, each
compiled alone (a hundred small programs for one CutMix law). ``call`` compiles the whole
routine once instead: ``fn(*static, *arrays)`` under ``jax.jit`` with ``static`` (the callable,
static sizes, option strings) as static arguments, so calling again with the same callable
reuses the program. A callable that cannot be hashed is compiled for that call only. Inside an
outer ``jit`` the routine is traced into the caller's program as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax


@functools.cache
def _jitted(fn: Callable[..., Any], num_static: int) -> Callable[..., Any]:
  return jax.jit(fn, static_argnums=tuple(range(num_static)))


def call(fn: Callable[..., Any], static: tuple[Any, ...], *arrays: Any) -> Any:
  """``fn(*static, *arrays)`` as one compiled program, kept per ``static`` when it can be hashed.

  Args:
    fn: a module-level function (its identity keys the compiled program).
    static: the arguments that shape the program: callables, ints, strings.
    arrays: the array arguments (pytrees of arrays).

  Returns:
    ``fn``'s result.

  >>> import jax.numpy as jnp
  >>> float(call(lambda f, n, x: f(x) * n, (jnp.sin, 2), jnp.float32(0.0)))
  0.0
  """
  try:
    hash(static)
  except TypeError:
    return jax.jit(functools.partial(fn, *static))(*arrays)
  return _jitted(fn, len(static))(*static, *arrays)
