"""An on-disk cache of computed tensors and results, keyed so that a result is never read for other inputs or
weights."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Callable

import torch

_FINGERPRINTS: "weakref.WeakKeyDictionary[torch.nn.Module, str]" = weakref.WeakKeyDictionary()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A short digest of ``module``'s parameter and buffer values (computed once per module object).

    >>> layer = torch.nn.Linear(2, 2)
    >>> a = weights_fingerprint(layer)
    >>> a == weights_fingerprint(layer), a == weights_fingerprint(torch.nn.Linear(2, 2))
    (True, False)
    """
    if module not in _FINGERPRINTS:
        h = hashlib.sha1()
        for name, value in module.state_dict().items():
            h.update(name.encode())
            h.update(value.detach().float().cpu().numpy().tobytes())
        _FINGERPRINTS[module] = h.hexdigest()[:10]
    return _FINGERPRINTS[module]


def digest(*parts) -> str:
    """A short digest of strings and bytes, e.g. an image array's ``tobytes()`` and a configuration key.

    >>> digest("a", b"b") == digest("a", b"b") != digest("ab")
    True
    """
    h = hashlib.sha1()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:10]


def cached_tensor(cache_dir, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``compute()``'s tensor, stored on the CPU in float16 as ``cache_dir / name.pt`` and read from there next
    time; without ``cache_dir`` nothing is stored. A fresh and a cached result are equal: both come back as
    the float16 values in float32. The file is written whole or not at all.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     first = cached_tensor(d, "x", lambda: torch.tensor([1 / 3]))
    ...     again = cached_tensor(d, "x", lambda: torch.tensor([0.0]))  # read, not recomputed
    >>> torch.equal(first, again), first.dtype
    (True, torch.float32)
    """
    path = Path(cache_dir) / f"{name}.pt" if cache_dir else None
    if path is not None and path.exists():
        return torch.load(path).float()
    value = compute().detach().cpu().half()
    if path is not None:
        write_whole(path, lambda f: torch.save(value, f))
    return value.float()


def cached_json(cache_dir, name: str, compute: Callable[[], object]):
    """``compute()``'s JSON value (dicts, lists, numbers, strings), stored as ``cache_dir / name.json`` and read
    from there next time; without ``cache_dir`` nothing is stored. The file is written whole or not at all.

    >>> with tempfile.TemporaryDirectory() as d:
    ...     first = cached_json(d, "x", lambda: {"mIoU": [1 / 3]})
    ...     again = cached_json(d, "x", lambda: {})  # read, not recomputed
    >>> first == again
    True
    """
    path = Path(cache_dir) / f"{name}.json" if cache_dir else None
    if path is not None and path.exists():
        return json.loads(path.read_text())
    value = compute()
    if path is not None:
        write_whole(path, lambda f: f.write(json.dumps(value, indent=1).encode() + b"\n"))
    return value


def write_whole(path: Path, write: Callable) -> None:
    """Write ``path`` through a temporary file in the same directory, moved into place when complete
    (:func:`move_into_place`), so parallel writers and interruptions never leave a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        move_into_place(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def move_into_place(finished, target) -> None:
    """Replace ``target`` by ``finished``: a file or directory written whole under a temporary name beside it
    (on the same file system), so that ``target`` is always the old or the new one, never half of either. A
    file replaces in one rename; a directory in two, the old one kept aside as ``<target>.old`` meanwhile.

    >>> with tempfile.TemporaryDirectory() as d:
    ...     for text in ("old", "new"):
    ...         (Path(d) / ".tmp").mkdir()
    ...         _ = (Path(d) / ".tmp" / "weights").write_text(text)
    ...         move_into_place(Path(d) / ".tmp", Path(d) / "model")
    ...     (Path(d) / "model" / "weights").read_text(), sorted(p.name for p in Path(d).iterdir())
    ('new', ['model'])
    """
    finished, target = Path(finished), Path(target)
    if not finished.is_dir():
        os.replace(finished, target)
        return
    old = target.with_name(target.name + ".old")
    if target.exists():
        target.rename(old)
    finished.rename(target)
    shutil.rmtree(old, ignore_errors=True)
