"""Trained weights on disk: saved whole, loaded only when intact, and kept with their manifest.

A notebook loads a trained model instead of training it again (``pretrained.load_pretrained``).
This module owns the files that make that possible.

- ``save_checkpoint`` / ``load_checkpoint``: one file of weights and an ``info`` dict. The file
  also holds a sha256 of its own content (weights and info), checked on every load: a changed
  byte is refused, not loaded as a weight that is off by a little. Loads use ``weights_only=True``
  (no code runs from a file) and ``map_location`` (a checkpoint trained on a GPU opens on a laptop).
- ``CheckpointStore(folder)``: a folder of checkpoints and its ``manifest.json`` (file name ->
  entry: the file's sha256, the recipe, the command that trained it, its score). ``current_store()``
  is the one the package uses: the repository's ``checkpoints/``, or the folder named by
  ``$MAML_LECTURE_CHECKPOINTS``, or that of a ``with using_store(folder):`` block.

No kill loses a model. A save writes the new checkpoint and the new manifest to temporary files,
then renames each into place (checkpoint first). Killed between the two renames, the new
checkpoint sits beside the old manifest entry; but the checkpoint carries its own entry
(``info["entry"]``), so the next load checks the file against the checksum stored in it and
completes the manifest. After a kill at any moment, the pair is the old one or the new one. The
manifest lock is the operating system's lock on ``manifest.lock`` (``fcntl.flock``;
``msvcrt.locking`` on Windows): it ends with the process that held it, however that process ended,
so the lock file that stays on disk never blocks a later save.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from lecture_utils.files import atomic_write, sha256_of, temporary_beside, why_not_writable

__all__ = ["CHECKPOINTS_ENV", "REPO_CHECKPOINTS", "CheckpointStore", "current_store", "load_checkpoint",
           "read_checkpoint", "save_checkpoint", "sha256_of", "using_store", "write_checkpoint"]

CHECKPOINTS_ENV = "MAML_LECTURE_CHECKPOINTS"
REPO_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
LOCK_TIMEOUT_S = 120.0


# --- one checkpoint file ------------------------------------------------------------------------

def content_sha256(state: dict, info: dict) -> str:
    """The sha256 of what a checkpoint holds: ``info`` (as sorted JSON), then each tensor's name,
    dtype, shape and bytes. Written into the file, and checked whenever it is loaded."""
    digest = hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"\n{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_checkpoint(path: str | Path, model: nn.Module, info: dict) -> None:
    """``torch.save`` the weights (on the CPU), ``info`` and their checksum to ``path`` directly (not atomic)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "info": info, "content_sha256": content_sha256(state, info)}, path)


def save_checkpoint(path: str | Path, model: nn.Module, info: dict) -> Path:
    """Save ``model``'s weights and a JSON-like ``info`` dict (config, metric, command), whole or not at all."""
    return atomic_write(path, lambda temporary: write_checkpoint(temporary, model, info))


def read_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[dict, str]:
    """The checked content of the checkpoint at ``path`` (``state_dict`` on ``device``, ``info``)
    and the file's sha256, both from one reading of the file."""
    path = Path(path)
    device = _available(device, path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; train the model (retrain=True) to create it")
    restore = f"restore it (`git checkout {path.name}` in checkpoints/) or retrain the model"
    data = path.read_bytes()
    try:
        blob = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception as error:  # torch reports a cut or changed file in many ways (EOF, zip, pickle, OSError)
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        raise ValueError(f"{path} is truncated or damaged, or not a checkpoint written by save_checkpoint "
                         f"({reason}); {restore}") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint (it holds no 'state_dict'); "
                         f"{restore}")
    stored = blob.get("content_sha256")
    if stored is not None and stored != content_sha256(blob["state_dict"], blob.get("info", {})):
        raise ValueError(f"{path} is damaged: its content does not match the checksum stored in it "
                         f"(a byte changed since it was saved); {restore}")
    return blob, hashlib.sha256(data).hexdigest()


def load_checkpoint(path: str | Path, model: nn.Module, device: torch.device | str = "cpu") -> dict:
    """Load weights saved by ``save_checkpoint`` into ``model`` (moved to ``device``); return info.

    Refused with a clear error: a missing, truncated or damaged file; content that does not match
    the checksum stored in it; and a file from before checkpoints held a checksum whose sha256
    differs from its entry in the ``manifest.json`` beside it."""
    path = Path(path)
    blob, sha = read_checkpoint(path, device)
    if "content_sha256" not in blob:  # written before checkpoints held a checksum: ask the manifest
        store = CheckpointStore(path.parent)
        entry = store.read_manifest().get(path.name)
        if entry is not None and entry["sha256"] != sha:
            raise RuntimeError(_mismatch(path, store.manifest, "restore it (`git checkout` it) or retrain the model"))
    model.load_state_dict(blob["state_dict"])
    model.to(device)
    return blob.get("info", {})


def _available(device: torch.device | str, path: Path) -> torch.device:
    """``device``, after checking that this machine has it (a checkpoint cannot be mapped onto a
    device that is not there)."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"cannot load {path.name} onto {device}: CUDA is not available on this machine; "
                           "load it onto the CPU with device='cpu'")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise RuntimeError(f"cannot load {path.name} onto {device}: this machine has "
                           f"{torch.cuda.device_count()} CUDA GPU(s); use 'cuda:0' or 'cpu'")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps is not None and mps.is_available()):
        raise RuntimeError(f"cannot load {path.name} onto mps: Apple MPS is not available on this machine; "
                           "load it onto the CPU with device='cpu'")
    return device


def _mismatch(path: Path, manifest: Path, fix: str) -> str:
    return (f"{path.name} does not match {manifest} (the file's sha256 differs from its entry there, or it "
            f"has none); {fix}")


# --- the folder of checkpoints and its manifest ---------------------------------------------------

class CheckpointStore:
    """A folder of checkpoints, its ``manifest.json``, and the lock that lets one process at a
    time update it: where each checkpoint is, and the only way the package saves and loads them."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest = self.folder / "manifest.json"
        self.lock_file = self.folder / "manifest.lock"

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.folder)!r})"

    def path(self, file_name: str) -> Path:
        """Where the checkpoint ``file_name`` is (or will be) in this folder."""
        return self.folder / file_name

    def read_manifest(self) -> dict:
        """The manifest as a dict (empty when there is none), checked: a JSON object whose entries
        each hold a ``sha256``."""
        if not self.manifest.exists():
            return {}
        fix = (f"restore it with `git checkout checkpoints/{self.manifest.name}` (or delete it and retrain "
               "every model)")
        try:
            manifest = json.loads(self.manifest.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{self.manifest} is not valid JSON ({err}); {fix}") from None
        if not isinstance(manifest, dict):
            raise ValueError(f"{self.manifest} must hold a JSON object (file name -> entry); {fix}")
        for name, entry in manifest.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
                raise ValueError(f"{self.manifest}: the entry for {name!r} has no sha256 checksum; {fix}, "
                                 f"or retrain it with `python -m lecture_utils.retrain NAME`")
        return manifest

    @contextmanager
    def lock(self, timeout: float | None = None):
        """Hold the manifest lock while the manifest is read and rewritten.

        The operating system's lock on ``manifest.lock``: released when the block ends, and also
        when the process ends in any way (a kill, a restarted kernel), so it never outlives its
        process. The file itself stays, holding the last owner's process id for error messages.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + (LOCK_TIMEOUT_S if timeout is None else timeout)
        with open(self.lock_file, "a+") as handle:
            while not _try_lock(handle):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.lock_file} is held by another process{_owner(self.lock_file)}, "
                                       "which is saving a model; wait for it to finish, or stop that process "
                                       "(its lock ends with it)")
                time.sleep(0.05)
            try:
                _write_owner(handle)
                yield
            finally:
                _unlock(handle)

    def check_writable(self) -> None:
        """Raise, before any training, when a checkpoint could not be saved in this folder."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            problem = why_not_writable(self.manifest)
        except OSError as error:
            problem = f"{self.folder} cannot be created ({error.strerror or error})"
        if problem:
            raise PermissionError(f"cannot save a checkpoint in {self.folder}: {problem}. Nothing was trained. "
                                  f"Make that folder writable, or save into another folder: set "
                                  f"{CHECKPOINTS_ENV}=/a/writable/folder (copy checkpoints/ there first to keep "
                                  "the other models).")

    def save(self, file_name: str, model: nn.Module, entry: dict) -> dict:
        """Save ``model`` as ``file_name`` and record its manifest ``entry`` (recipe, command, score,
        ...); return the entry as recorded, with the file's sha256.

        Both change, or neither does. The new checkpoint (carrying ``entry``) and the new manifest
        are written to temporary files; only when both are complete are they renamed into place.
        An error before that leaves the old pair as it was; a kill between the two renames is
        completed by the next ``load``.
        """
        path = self.path(file_name)
        entry = json.loads(json.dumps({k: v for k, v in entry.items() if k != "sha256"}, default=str))
        temporaries = []
        try:
            with self.lock():
                manifest = self.read_manifest()  # an invalid manifest stops here: nothing changed
                weights = temporary_beside(path)
                temporaries.append(weights)
                write_checkpoint(weights, model, {"entry": entry})
                manifest[file_name] = recorded = {"sha256": sha256_of(weights), **entry}
                new_manifest = self._manifest_beside(manifest)
                temporaries.append(new_manifest)
                os.replace(weights, path)           # a kill right after this: the next load completes it
                os.replace(new_manifest, self.manifest)
        finally:
            for temporary in temporaries:
                temporary.unlink(missing_ok=True)
        return recorded

    def record(self, file_name: str, entry: dict) -> dict:
        """Record the entry of the existing checkpoint ``file_name`` (with its sha256) in the manifest."""
        with self.lock():
            manifest = self.read_manifest()
            manifest[file_name] = recorded = {"sha256": sha256_of(self.path(file_name)), **entry}
            self._replace_manifest(manifest)
        return recorded

    def load(self, file_name: str, model: nn.Module, device: torch.device | str = "cpu",
             fix: str = "retrain the model") -> dict:
        """Load the checkpoint ``file_name`` into ``model`` on ``device``; return its manifest entry.

        The file's sha256 must match its manifest entry (``fix`` says what to do when it does not).
        A checkpoint that ``save`` wrote carries its own entry: when it also matches the checksum
        stored in it, a manifest that lags behind (a save killed between its two renames) is
        completed instead, or, in a folder that cannot be written, a warning says so.
        """
        path = self.path(file_name)
        blob, sha = read_checkpoint(path, device)
        entry = self.read_manifest().get(file_name)
        if entry is None or entry["sha256"] != sha:
            info = blob.get("info")
            carried = info.get("entry") if isinstance(info, dict) else None
            if "content_sha256" not in blob or not isinstance(carried, dict):
                raise RuntimeError(_mismatch(path, self.manifest, fix))
            entry = self._complete(file_name, {"sha256": sha, **carried})
        model.load_state_dict(blob["state_dict"])
        model.to(device)
        return entry

    def _complete(self, file_name: str, entry: dict) -> dict:
        """Record ``entry``, which the checkpoint carried, for a save that was killed before it could."""
        try:
            with self.lock(timeout=10):
                manifest = self.read_manifest()
                if manifest.get(file_name, {}).get("sha256") != entry["sha256"]:  # not done by another process
                    manifest[file_name] = entry
                    self._replace_manifest(manifest)
                    print(f"{self.manifest.name}: recorded {file_name}, whose save was interrupted before "
                          "its manifest entry was written")
        except OSError as error:  # a read-only folder, or a lock held long: the load itself is sound
            warnings.warn(f"{self.manifest} lacks the entry of {file_name} (its save was interrupted) and could "
                          f"not be updated ({error}); loading the checkpoint, which matches its own checksum",
                          RuntimeWarning, stacklevel=3)
        return entry

    def _manifest_beside(self, manifest: dict) -> Path:
        """``manifest`` written to a temporary file beside the manifest (moved into place by the caller)."""
        temporary = temporary_beside(self.manifest)
        temporary.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
        return temporary

    def _replace_manifest(self, manifest: dict) -> None:
        temporary = self._manifest_beside(manifest)
        try:
            os.replace(temporary, self.manifest)
        finally:
            temporary.unlink(missing_ok=True)


_pointed: list[CheckpointStore] = []  # the stores of the `with using_store(...)` blocks now open


def current_store() -> CheckpointStore:
    """Where checkpoints are read and saved: the folder of the innermost ``with using_store(...)``
    block, else ``$MAML_LECTURE_CHECKPOINTS``, else the repository's ``checkpoints/``."""
    if _pointed:
        return _pointed[-1]
    folder = os.environ.get(CHECKPOINTS_ENV, "").strip()
    return CheckpointStore(folder or REPO_CHECKPOINTS)


@contextmanager
def using_store(folder: str | Path):
    """``with using_store(folder):`` reads and saves checkpoints in ``folder`` inside the block."""
    store = CheckpointStore(folder)
    _pointed.append(store)
    try:
        yield store
    finally:
        _pointed.remove(store)


# --- the operating system's file lock ---------------------------------------------------------------

def _try_lock(handle) -> bool:
    """Take the lock on the open file ``handle`` without waiting; False when another process has it."""
    try:
        import fcntl
    except ImportError:  # Windows: a lock on the file's first byte
        import msvcrt

        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(handle) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_owner(handle) -> None:
    """Write this process's id into the lock file, for the message another process may show."""
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
    except OSError:  # Windows forbids it while the byte is locked: the message goes without the id
        pass


def _owner(lock_file: Path) -> str:
    try:
        pid = lock_file.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
