"""Save and load models as one safe file: a zip archive of ``meta.json`` and raw arrays.

Layout of a ``.mlp`` file (any zip tool can list it, any JSON reader can read its header)::

    meta.json                 format "mlp", format_version, kind, dtype, architecture,
                              hyperparameters, fitted attributes, optimizer settings and step,
                              and the dtype and shape of every array below
    arrays/coefs/0.bin        raw little-endian float32/float64, C order (an estimator's
    arrays/intercepts/0.bin   weights; a Model's are arrays/layers/<i>/weights.bin and bias.bin)
    arrays/optimizer/0.bin    the optimizer's buffers (Adam's m and v, or the momentum velocity)

Loading never runs code: no pickle, no ``allow_pickle``. Every field is checked, and every array's
size is first derived from the architecture, then compared with the size the archive declares,
and only then read, so a crafted, truncated or garbled file gives a ValueError rather than a
crash or a huge allocation.
"""
from __future__ import annotations

import json
import os
import secrets
import warnings
import zipfile
import zlib

import numpy as np

from . import _format

__all__ = ["save", "load"]

_META = "meta.json"
_MAX_META_BYTES = 64 << 20
# Deflate cannot compress better than about 1032:1, so a member that claims more is a zip bomb
# (or a lie); the slack covers headers of tiny members.
_MAX_RATIO = 1100
_SLACK = 4096
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
               NotImplementedError, UnicodeDecodeError, ValueError)


def _member(name: str) -> str:
    return f"arrays/{name}.bin"


def _display_name(file) -> str:
    if isinstance(file, (str, os.PathLike)):
        return os.fspath(file)
    return getattr(file, "name", None) or type(file).__name__


def save(obj, file) -> None:
    """Write a Model, MLPClassifier or MLPRegressor to one file.

    Parameters
    ----------
    obj : Model, MLPClassifier or MLPRegressor
        Fitted or not. Callbacks are not saved (the loaded estimator has ``callbacks=None``);
        any other hyperparameter that is not plain data is saved as None, with a warning.
    file : str, path-like or binary file object
        Conventionally named ``*.mlp``. A path is written to a temporary file first and then
        renamed, so an existing file is never left half-written.

    Raises
    ------
    TypeError
        If `obj` is not one of the three, or holds a user's own layer, activation or
        optimizer (pickle such a model instead).

    Examples
    --------
    >>> clf.save("iris.mlp")            # doctest: +SKIP
    >>> clf2 = mlp.load("iris.mlp")     # doctest: +SKIP
    """
    state = _format.get_state(obj)
    if state.dropped:
        warnings.warn(f"hyperparameters {state.dropped} are not plain data and were saved as "
                      f"None", UserWarning, stacklevel=3)
    meta = json.dumps(state.meta, allow_nan=False, separators=(",", ":")).encode("utf-8")
    if not isinstance(file, (str, os.PathLike)):
        _write(file, meta, state.arrays)
        return
    path = os.fspath(file)
    directory, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path!r}: the directory {directory!r} does not "
                                f"exist")
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # Created like any new file (mode 0o666 less the umask), unlike tempfile's private 0o600.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _write(f, meta, state.arrays)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _entry(name: str) -> zipfile.ZipInfo:
    # A fixed timestamp makes the same model give the same bytes; the mode is what unzip applies.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    return info


def _write(f, meta: bytes, arrays: dict) -> None:
    with zipfile.ZipFile(f, "w") as zf:
        zf.writestr(_entry(_META), meta, compress_type=zipfile.ZIP_DEFLATED)
        for name, arr in arrays.items():
            data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
            # Stored, not deflated: float weights barely compress, and stored members load faster.
            zf.writestr(_entry(_member(name)), data, compress_type=zipfile.ZIP_STORED)


def load(file):
    """Read a file written by ``save`` (``Model.save``, ``MLPClassifier.save``, ...).

    Parameters
    ----------
    file : str, path-like or binary file object

    Returns
    -------
    Model, MLPClassifier or MLPRegressor
        Whichever was saved: fitted, predicting exactly as when saved, and able to keep training
        (``fit``, ``partial_fit``, ``warm_start``) from the saved optimizer state.

    Raises
    ------
    FileNotFoundError
        If the path does not exist (other OSErrors as the system reports them).
    ValueError
        If the file is not an mlp model (not a zip, or no ``meta.json``), is truncated or
        corrupt, was written by a newer mlp (the message says to upgrade), or any field or
        array disagrees with the architecture it describes.

    Examples
    --------
    >>> import mlp
    >>> model = mlp.load("model.mlp")  # doctest: +SKIP
    """
    name = _display_name(file)
    if isinstance(file, (str, os.PathLike)):
        if not os.path.exists(file):
            raise FileNotFoundError(f"no such file: {name!r}")
        with open(file, "rb") as f:
            return _load(f, name)
    return _load(file, name)


def _load(f, name: str):
    try:
        size = f.seek(0, os.SEEK_END)
        f.seek(0)
        with zipfile.ZipFile(f) as zf:
            return _restore(zf, size)
    except _FileError as exc:
        raise ValueError(f"{name}: {exc}") from None
    except _ZIP_ERRORS as exc:  # zipfile's own, while it reads the archive's directory
        raise ValueError(f"{name} is not an mlp model file: it is not a readable zip archive "
                         f"({exc})") from None


class _FileError(ValueError):
    """A problem found in the file's content (told apart from zipfile's own errors)."""


def _restore(zf: zipfile.ZipFile, size: int):
    try:
        info = zf.getinfo(_META)
    except KeyError:
        raise _FileError(f"not an mlp model file: the archive has no {_META}") from None
    raw = _read(zf, info, size, limit=_MAX_META_BYTES)
    try:
        meta = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _FileError(f"{_META} is not valid JSON ({exc})") from None
    try:
        return _format.restore(meta, _zip_fetcher(zf, size))
    except RecursionError:
        raise _FileError(f"{_META} is nested too deeply") from None
    except _FileError:
        raise
    except ValueError as exc:
        raise _FileError(str(exc)) from None


def _reject_constant(token: str):
    raise ValueError(f"{token} is not allowed in an mlp file")


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, size: int, *, limit: int | None = None,
          exact: int | None = None) -> bytes:
    """Read one member after bounding its size: by `exact` bytes or at most `limit`.

    The sizes in a zip header are claims. The stored (compressed) size is checked against the
    archive's real length and the unpacked size against deflate's best ratio, so nothing larger
    than about a thousand times the file itself is ever allocated.
    """
    member = info.filename
    if info.header_offset + info.compress_size > size:
        raise _FileError(f"the member {member} is truncated: it claims {info.compress_size} bytes "
                         f"past the end of the file")
    if info.flag_bits & 0x1:
        raise _FileError(f"the member {member} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _FileError(f"the member {member} uses compression method "
                         f"{info.compress_type}; an mlp file uses stored or deflated members")
    if exact is not None and info.file_size != exact:
        raise _FileError(f"the member {member} holds {info.file_size} bytes, but the "
                         f"architecture needs {exact}")
    if limit is not None and info.file_size > limit:
        raise _FileError(f"the member {member} declares {info.file_size} bytes, more "
                         f"than the {limit} allowed")
    ratio_ok = (info.file_size == info.compress_size if info.compress_type == zipfile.ZIP_STORED
                else info.file_size <= info.compress_size * _MAX_RATIO + _SLACK)
    if not ratio_ok:
        raise _FileError(f"the member {member} declares {info.file_size} bytes from "
                         f"{info.compress_size} stored: not a genuine mlp file")
    try:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except _ZIP_ERRORS as exc:
        raise _FileError(f"the member {member} is truncated or corrupt ({exc})") from None
    if len(data) != info.file_size:
        raise _FileError(f"the member {member} is truncated: {len(data)} of "
                         f"{info.file_size} bytes")
    return data


def _zip_fetcher(zf: zipfile.ZipFile, size: int):
    def fetch(array: str, dtype: str, shape: tuple) -> np.ndarray:
        member = _member(array)
        try:
            info = zf.getinfo(member)
        except KeyError:
            raise _FileError(f"the member {member} is missing") from None
        itemsize = np.dtype(dtype).itemsize
        count = 1
        for s in shape:
            count *= s
        data = _read(zf, info, size, exact=count * itemsize)
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    return fetch
