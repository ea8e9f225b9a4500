"""Multi-process start-up: one call before any other JAX call, on every process.

``initialize()`` with no arguments lets JAX detect the cluster (Cloud TPU, SLURM, Kubernetes,
MPI); on other machines give the coordinator's ``host:port``, the number of processes and this
process's index. On CPU the processes exchange collectives over gloo (JAX's default).
"""

from __future__ import annotations

import jax


def initialize(
  coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
  """Connects this process to the others (``jax.distributed.initialize``); a no-op when already done.

  Args:
    coordinator_address: ``"host:port"`` of process 0's coordinator, or ``None`` to detect it.
    num_processes: the number of processes, or ``None`` to detect it.
    process_id: this process's index in ``[0, num_processes)``, or ``None`` to detect it.
  """
  if jax.distributed.is_initialized():
    return
  jax.distributed.initialize(
    coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
  )
