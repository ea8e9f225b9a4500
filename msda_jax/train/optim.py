"""The optimiser of the paper's setup from plain arguments: SGD with Nesterov momentum and a schedule.

Section 5 trains with SGD (learning rate 0.2 on CIFAR-100, 0.1 on ImageNet, 300 epochs); weight
decay is an L2 term of the loss (``msda_jax.train.step``), not part of the optimiser. The
learning rate follows a cosine decay to 0 or a step schedule (multiplied by ``decay_factor`` at
each of ``boundaries``), after an optional linear warm-up.
"""

from __future__ import annotations

from collections.abc import Sequence

import optax

SCHEDULES = ("cosine", "step", "constant")


def make_schedule(
  *,
  learning_rate: float,
  total_steps: int,
  schedule: str = "cosine",
  warmup_steps: int = 0,
  boundaries: Sequence[int] = (),
  decay_factor: float = 0.1,
) -> optax.Schedule:
  """The learning rate as a function of the step.

  Args:
    learning_rate: the peak learning rate.
    total_steps: the number of training steps (the cosine reaches 0 there).
    schedule: ``"cosine"``, ``"step"`` or ``"constant"``.
    warmup_steps: linear warm-up from 0 over this many steps (included in ``total_steps``).
    boundaries: steps at which the step schedule multiplies the rate by ``decay_factor``
      (counted from the start of training).
    decay_factor: the step schedule's multiplier.

  Returns:
    an optax schedule, ``step -> learning rate``.

  >>> schedule = make_schedule(learning_rate=0.2, total_steps=300, schedule="step", boundaries=(100, 200))
  >>> [round(float(schedule(s)), 4) for s in (0, 150, 250)]
  [0.2, 0.02, 0.002]
  """
  if schedule not in SCHEDULES:
    raise ValueError(f"schedule must be one of {SCHEDULES}; got {schedule!r}.")
  if total_steps <= 0 or not 0 <= warmup_steps < total_steps:
    raise ValueError(f"need total_steps > 0 and 0 <= warmup_steps < total_steps; got {total_steps}, {warmup_steps}.")
  if schedule == "cosine":
    main = optax.cosine_decay_schedule(learning_rate, total_steps - warmup_steps)
  elif schedule == "step":
    scales = {int(b) - warmup_steps: decay_factor for b in boundaries if int(b) > warmup_steps}
    main = optax.piecewise_constant_schedule(learning_rate, scales)
  else:
    main = optax.constant_schedule(learning_rate)
  if warmup_steps == 0:
    return main
  warmup = optax.linear_schedule(0.0, learning_rate, warmup_steps)
  return optax.join_schedules([warmup, main], [warmup_steps])


def make_optimizer(
  *,
  learning_rate: float,
  total_steps: int,
  schedule: str = "cosine",
  momentum: float = 0.9,
  nesterov: bool = True,
  warmup_steps: int = 0,
  boundaries: Sequence[int] = (),
  decay_factor: float = 0.1,
) -> optax.GradientTransformation:
  """SGD with (Nesterov) momentum 0.9 on the schedule of ``make_schedule``.

  Args:
    learning_rate: the peak learning rate (0.2 for the paper's CIFAR-100 runs, 0.1 on ImageNet).
    total_steps: the number of training steps.
    schedule: ``"cosine"``, ``"step"`` or ``"constant"``.
    momentum: the momentum coefficient.
    nesterov: Nesterov momentum.
    warmup_steps: linear warm-up steps.
    boundaries: step-schedule boundaries, in steps.
    decay_factor: step-schedule multiplier.

  Returns:
    an ``optax.GradientTransformation``.

  >>> tx = make_optimizer(learning_rate=0.1, total_steps=1000)
  >>> callable(tx.update)
  True
  """
  lr = make_schedule(
    learning_rate=learning_rate,
    total_steps=total_steps,
    schedule=schedule,
    warmup_steps=warmup_steps,
    boundaries=boundaries,
    decay_factor=decay_factor,
  )
  return optax.sgd(lr, momentum=momentum, nesterov=nesterov)
