"""Tiny constructor options of every registered model, for the tests that build each (one module: imported by them).

The convolutional models shrink by ``width``; the ViTs also by depth and heads, and take 32 x 32
images whatever their published size.
"""

VIT_TINY = {"width": 8, "depth": 2, "heads": 2, "image_size": 32}


def tiny(name, width=4):
  """Keyword arguments that make model ``name`` tiny (``width`` for the convolutional ones)."""
  return dict(VIT_TINY) if name.startswith("vit_") else {"width": width}
