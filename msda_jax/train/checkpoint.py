"""Checkpoints of a training run in ``workdir/checkpoints``, with Orbax, resumed automatically.

A checkpoint holds two items: ``"state"``, the pytree ``{"model": model_state, "opt":
opt_state, "key": jax.random.key_data(key)}`` of replicated global arrays, and ``"data"``, the
data iterator's state (a JSON dict, the same on every process). Orbax writes them atomically
(into a temporary directory renamed when complete, so a killed run leaves no partial
checkpoint), asynchronously, from every process for the arrays it owns, and deletes all but the
last ``keep`` checkpoints.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves every ``every_steps`` steps into ``directory``, keeps the last ``keep``, restores the latest.

  Args:
    directory: where the step directories go (created; ``workdir/checkpoints``).
    every_steps: save when ``step % every_steps == 0`` (``force=True`` saves any step).
    keep: how many of the latest checkpoints to keep.

  Use it as a context manager, or call ``close`` (it waits for the pending writes).
  """

  def __init__(self, directory: str, *, every_steps: int, keep: int):
    options = ocp.CheckpointManagerOptions(save_interval_steps=max(every_steps, 1), max_to_keep=keep, create=True)
    self.manager = ocp.CheckpointManager(os.path.abspath(directory), options=options)

  def latest_step(self) -> int | None:
    """The step of the latest complete checkpoint, or ``None``."""
    return self.manager.latest_step()

  def save(self, step: int, state: Any, data_state: dict[str, Any], *, force: bool = False) -> bool:
    """Saves ``state`` (a pytree of global arrays) and ``data_state`` as step ``step``; True if saved."""
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state))
    return self.manager.save(step, args=args, force=force)

  def restore(self, target: Any, step: int | None = None) -> tuple[int, Any, dict[str, Any]] | None:
    """``(step, state, data_state)`` of the latest checkpoint (or ``step``), or ``None`` if there is none.

    ``target`` is a pytree like the saved state (arrays or ``jax.ShapeDtypeStruct`` with
    shardings): the restored arrays get its structure, dtypes and shardings.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore())
    restored = self.manager.restore(step, args=args)
    return step, restored["state"], dict(restored["data"])

  def close(self) -> None:
    """Waits for the pending writes and releases the manager."""
    self.manager.wait_until_finished()
    self.manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()


def load_state(directory: str, step: int | None = None) -> tuple[int, Any]:
  """``(step, state)`` of the latest (or ``step``) checkpoint in ``directory``, as numpy arrays.

  For inspection and tests: no target is needed (the structure comes from the checkpoint's
  metadata; the pytree comes back as nested dicts), and the checkpoint may come from another
  device or process topology.
  """
  options = ocp.CheckpointManagerOptions(read_only=True)
  handlers = {"state": ocp.StandardCheckpointHandler()}
  with ocp.CheckpointManager(os.path.abspath(directory), options=options, item_handlers=handlers) as manager:
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {directory}.")
    metadata = manager.item_metadata(step)["state"]
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata.tree)
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
  return step, jax.device_get(restored["state"])
