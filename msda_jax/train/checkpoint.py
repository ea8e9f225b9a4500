"""Checkpoints of a training run in ``workdir/checkpoints``, with Orbax, checked and resumed automatically.

A checkpoint holds two items: ``"state"``, a pytree of replicated global arrays, and
``"data"``, the data iterator's state (a JSON dict, the same on every process). A run's
``TrainState`` (``msda_jax.train.state``) is saved as the dict ``{"model": model_state, "opt":
opt_state, "key": key_data}`` (``TrainState.to_checkpoint``) and restored into a ``TrainState``
when the restore target is one: the layout of the checkpoints written before ``TrainState``
existed, which therefore restore unchanged. Orbax writes them atomically
(into a temporary directory renamed when complete, so a killed run leaves no partial
checkpoint), asynchronously, from every process for the arrays it owns, and deletes all but the
last ``keep`` checkpoints.

Integrity. Once Orbax has finished a step, process 0 seals it with a SHA-256 manifest of its
files (``msda_jax.train.integrity``): at the first ``save`` call that finds the write done, before
the next save at the latest, and at ``close``. A restore walks the steps newest first:

* a step whose files all match its manifest is *intact*, and the newest intact step is restored;
* a step whose manifest does not match (a file changed, truncated, zeroed or deleted) is
  *damaged*, and is skipped;
* a step without a manifest is *unverified*: the run stopped between Orbax finishing the step
  and the manifest write (or wrote no manifests). It gives way to an older intact step, since
  resuming from there recomputes the same steps bit for bit and loses nothing; without one, it
  is restored if Orbax can read it, and a read error makes it damaged.

Each skipped step gets one warning line (``logging``) naming the step and what is wrong, and is
moved into ``checkpoints/rejected/`` (kept for inspection, out of the way of the run that saves
that step again). When checkpoints exist but none is intact or readable, the restore raises
``DamagedCheckpointError``, one line naming the directory to remove to start afresh: starting
over silently would throw away a run that may only need a disk fixed.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp

from msda_jax.train import integrity
from msda_jax.train.state import TrainState

logger = logging.getLogger(__name__)

REJECTED = "rejected"  # where skipped steps go, inside the checkpoint directory
NO_MANIFEST = "no manifest"


class DamagedCheckpointError(RuntimeError):
  """Checkpoints exist but none can be restored safely; the message says which directory to remove."""


def _damage(step_dir: str) -> str | None:
  """``None`` for an intact step, ``NO_MANIFEST`` for an unverified one, else what is damaged."""
  if not integrity.has_manifest(step_dir):
    return NO_MANIFEST
  return integrity.find_damage(step_dir)


def _first_line(error: BaseException) -> str:
  lines = str(error).strip().splitlines()
  return f"{error.__class__.__name__}: {lines[0] if lines else ''}"[:200]


def _choose(directory: str, steps: list[int], read: Callable[[int], Any]) -> tuple[int, Any, list[tuple[int, str]]]:
  """``(step, read(step), skipped)`` for the step of ``steps`` to restore, by the rules above.

  Steps are checked newest first, and only until an intact one is found. ``skipped`` lists
  ``(step, reason)`` for the newer steps passed over. Raises ``DamagedCheckpointError`` when no
  step is intact or readable.
  """
  steps = sorted(steps, reverse=True)
  problems: dict[int, str] = {}
  for step in steps:
    problem = _damage(os.path.join(directory, str(step)))
    if problem is None:
      return step, read(step), [(s, problems[s]) for s in steps if s > step]
    problems[step] = problem
  for step in steps:
    if problems[step] != NO_MANIFEST:
      continue
    try:
      restored = read(step)
    except Exception as error:  # an unverified step that Orbax cannot read is damaged
      problems[step] = f"{NO_MANIFEST}, and it does not restore: {_first_line(error)}"
      continue
    return step, restored, [(s, problems[s]) for s in steps if s > step]
  found = "; ".join(f"step {step}: {problems[step]}" for step in steps)
  raise DamagedCheckpointError(
    f"no intact checkpoint in {directory} ({found}); remove or rename {directory} to start the run afresh."
  )


def _warn(directory: str, skipped: list[tuple[int, str]], chosen: int, moved: dict[int, str]) -> None:
  """One warning line per skipped step: which, why, the step used instead and where it went."""
  for step, reason in skipped:
    what = "has no manifest (the run stopped before sealing it)" if reason == NO_MANIFEST else f"is damaged ({reason})"
    where = f"; moved to {moved[step]}" if step in moved else ""
    logger.warning("checkpoint step %d in %s %s; using step %d%s.", step, directory, what, chosen, where)


def _set_aside(directory: str, step: int) -> str:
  """Moves step directory ``step`` into ``directory/rejected`` (under a fresh name); returns where."""
  rejected = os.path.join(directory, REJECTED)
  os.makedirs(rejected, exist_ok=True)
  target, copy = os.path.join(rejected, str(step)), 1
  while os.path.exists(target):
    copy += 1
    target = os.path.join(rejected, f"{step}.{copy}")
  shutil.move(os.path.join(directory, str(step)), target)
  return target


class Checkpointer:
  """Saves every ``every_steps`` steps into ``directory``, keeps the last ``keep``, restores the newest intact.

  Args:
    directory: where the step directories go (created; ``workdir/checkpoints``).
    every_steps: save when ``step % every_steps == 0`` (``force=True`` saves any step).
    keep: how many of the latest checkpoints to keep.

  Use it as a context manager, or call ``close`` (it waits for the pending writes and seals them).
  """

  def __init__(self, directory: str, *, every_steps: int, keep: int):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(save_interval_steps=max(every_steps, 1), max_to_keep=keep, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options)
    self._unsealed: list[int] = []  # saved steps without a manifest yet

  def latest_step(self) -> int | None:
    """The step of the latest complete checkpoint, or ``None``."""
    return self.manager.latest_step()

  def _seal(self, *, wait: bool) -> None:
    """Writes the manifests of the finished saves; waits for a pending one when ``wait``."""
    if not self._unsealed:
      return
    if wait:
      self.manager.wait_until_finished()
    elif self.manager.is_saving_in_progress():
      return
    if jax.process_index() == 0:
      for step in self._unsealed:
        step_dir = os.path.join(self.directory, str(step))
        if os.path.isdir(step_dir):  # not already deleted by ``keep``
          integrity.write_manifest(step_dir)
    self._unsealed = []

  def save(self, step: int, state: Any, data_state: dict[str, Any], *, force: bool = False) -> bool:
    """Saves ``state`` (global arrays, or a ``TrainState``) and ``data_state`` as step ``step``; True if saved.

    Call it every step: it also seals the previous save once Orbax has finished it.
    """
    if isinstance(state, TrainState):
      state = state.to_checkpoint()
    self._seal(wait=force or self.manager.should_save(step))
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state))
    saved = self.manager.save(step, args=args, force=force)
    if saved:
      self._unsealed.append(step)
    return saved

  def restore(self, target: Any, step: int | None = None) -> tuple[int, Any, dict[str, Any]] | None:
    """``(step, state, data_state)`` of the newest intact checkpoint (or of ``step``), or ``None`` if there is none.

    ``target`` is a pytree like the saved state (arrays or ``jax.ShapeDtypeStruct`` with
    shardings): the restored arrays get its structure, dtypes and shardings; for a
    ``TrainState`` target the state comes back as a ``TrainState``. Newer damaged or
    unverified steps are skipped with a warning and moved to ``directory/rejected``; a given
    ``step`` that is damaged raises ``DamagedCheckpointError``.
    """
    as_train_state = isinstance(target, TrainState)
    if as_train_state:
      target = target.to_checkpoint()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore())

    def read(s: int) -> Any:
      return self.manager.restore(s, args=args)

    steps = list(self.manager.all_steps()) if step is None else [step]
    if not steps:
      return None
    step, restored, skipped = _choose(self.directory, steps, read)
    moved = {s: _set_aside(self.directory, s) for s, _ in skipped} if jax.process_index() == 0 else {}
    _warn(self.directory, skipped, step, moved)
    if skipped:
      if jax.process_count() > 1:
        ocp.multihost.sync_global_processes("msda_jax_checkpoint_set_aside")
      self.manager.reload()
    state = TrainState.from_checkpoint(restored["state"]) if as_train_state else restored["state"]
    return step, state, dict(restored["data"])

  def close(self) -> None:
    """Waits for the pending writes, seals them and releases the manager."""
    self._seal(wait=True)
    self.manager.wait_until_finished()
    self.manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()


def load_state(directory: str, step: int | None = None) -> tuple[int, Any]:
  """``(step, state)`` of the newest intact (or of ``step``) checkpoint in ``directory``, as numpy arrays.

  For inspection and tests: no target is needed (the structure comes from the checkpoint's
  metadata; the pytree comes back as nested dicts), and the checkpoint may come from another
  device or process topology. Checked like ``Checkpointer.restore``, but read-only: a skipped
  step is only warned about.
  """
  directory = os.path.abspath(directory)
  options = ocp.CheckpointManagerOptions(read_only=True)
  handlers = {"state": ocp.StandardCheckpointHandler()}
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  with ocp.CheckpointManager(directory, options=options, item_handlers=handlers) as manager:

    def read(s: int) -> Any:
      metadata = manager.item_metadata(s)["state"]
      target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata.tree)
      return manager.restore(s, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))

    steps = list(manager.all_steps()) if step is None else [step]
    if not steps:
      raise FileNotFoundError(f"no checkpoint in {directory}.")
    step, restored, skipped = _choose(directory, steps, read)
  _warn(directory, skipped, step, {})
  return step, jax.device_get(restored["state"])
