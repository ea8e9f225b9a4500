"""SHA-256 manifests of checkpoint step directories: written once a step is complete, checked before a restore.

Orbax guards the shard index of an array with a CRC32C but not the data itself, so a
checkpoint with a few bytes overwritten restores silently with wrong values. A manifest closes
that gap: ``<step>/manifest.sha256`` holds one ``<hex digest>  <path>`` line per file of the
step directory (paths relative to it, sorted, the manifest itself left out), the format of
``sha256sum``, so ``sha256sum -c manifest.sha256`` run inside the step directory checks it by
hand too. Files added to the directory after the manifest are not checked.
"""

from __future__ import annotations

import hashlib
import os

MANIFEST = "manifest.sha256"
_PARTIAL = MANIFEST + ".partial"


def file_digest(path: str) -> str:
  """The hex SHA-256 of the file at ``path``."""
  with open(path, "rb") as file:
    return hashlib.file_digest(file, "sha256").hexdigest()


def _files(directory: str) -> list[str]:
  """Every file under ``directory`` but the manifest, as sorted ``/``-separated relative paths."""
  paths = []
  for root, _, names in os.walk(directory):
    for name in names:
      relative = os.path.relpath(os.path.join(root, name), directory).replace(os.sep, "/")
      if relative not in (MANIFEST, _PARTIAL):
        paths.append(relative)
  return sorted(paths)


def has_manifest(directory: str) -> bool:
  """Whether ``directory`` has a manifest (a step saved but not yet sealed has none)."""
  return os.path.isfile(os.path.join(directory, MANIFEST))


def write_manifest(directory: str) -> None:
  """Writes ``directory/manifest.sha256`` for the files there now, atomically (a rename)."""
  lines = [f"{file_digest(os.path.join(directory, path))}  {path}\n" for path in _files(directory)]
  partial = os.path.join(directory, _PARTIAL)
  with open(partial, "w", encoding="utf-8") as file:
    file.writelines(lines)
    file.flush()
    os.fsync(file.fileno())
  os.replace(partial, os.path.join(directory, MANIFEST))


def find_damage(directory: str) -> str | None:
  """``None`` when every file the manifest of ``directory`` lists has its digest, else what is wrong.

  Returns:
    ``None``, or a few words naming the first damaged file (``"state/d/1f0c: checksum
    mismatch (and 2 more files)"``); a missing or unreadable manifest is damage too.

  >>> import pathlib, tempfile
  >>> step = pathlib.Path(tempfile.mkdtemp())
  >>> _ = (step / "weights").write_bytes(b"1234")
  >>> write_manifest(str(step)); find_damage(str(step)) is None
  True
  >>> _ = (step / "weights").write_bytes(b"1235")
  >>> find_damage(str(step))
  'weights: checksum mismatch'
  """
  try:
    with open(os.path.join(directory, MANIFEST), encoding="utf-8") as file:
      entries = [line.rstrip("\n").split("  ", 1) for line in file if line.strip()]
  except (OSError, UnicodeDecodeError) as error:
    return f"{MANIFEST} unreadable ({error.__class__.__name__})"
  if not entries or any(len(entry) != 2 for entry in entries):
    return f"{MANIFEST} malformed"
  problems = []
  for digest, path in entries:
    full = os.path.join(directory, *path.split("/"))
    if not os.path.isfile(full):
      problems.append(f"{path}: missing")
    elif file_digest(full) != digest:
      problems.append(f"{path}: checksum mismatch")
  if not problems:
    return None
  more = len(problems) - 1
  return problems[0] + (f" (and {more} more file{'s' if more > 1 else ''})" if more else "")
