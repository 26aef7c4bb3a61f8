"""``sqlnb.Blob``: the stdlib's ``sqlite3.Blob`` (``Connection.blobopen``): one BLOB value read and
written in place, file-like (``read``, ``write``, ``seek``, ``tell``) and as a sequence of bytes
(``len``, indexing, slices, assignment of the same size). A blob cannot grow or shrink.
"""
from __future__ import annotations

import os

from sqlnb import errors as _errors


class Blob:
    """An open BLOB (see the module); a context manager that closes it."""

    def __init__(self, raw_blob):
        self._b = raw_blob
        self._pos = 0

    def _len(self) -> int:
        if self._b.closed:
            raise _errors.ProgrammingError("Cannot operate on a closed blob.")
        return self._b.length()

    def close(self) -> None:
        self._b.close()

    def __enter__(self):
        self._len()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __len__(self) -> int:
        return self._len()

    def tell(self) -> int:
        self._len()
        return self._pos

    def seek(self, offset, origin=os.SEEK_SET, /) -> None:
        n = self._len()
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: n}.get(origin)
        if base is None:
            raise ValueError("'origin' should be os.SEEK_SET, os.SEEK_CUR, or os.SEEK_END")
        target = base + offset
        if not 0 <= target <= n:
            raise ValueError("offset out of blob range")
        self._pos = target

    def read(self, length=-1, /) -> bytes:
        n = self._len()
        if length is None or length < 0 or length > n - self._pos:
            length = n - self._pos
        if length <= 0:
            return b""
        data = self._b.read(self._pos, length)
        self._pos += length
        return data

    def write(self, data, /) -> None:
        n = self._len()
        size = memoryview(data).nbytes
        if size > n - self._pos:
            raise ValueError("data longer than blob length")
        self._b.write(self._pos, data)
        self._pos += size

    def _index(self, i: int, n: int) -> int:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"Blob indices must be integers, not {type(i).__name__}")
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError("Blob index out of range")
        return j

    def __getitem__(self, key):
        n = self._len()
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self._b.read(start, stop - start) if stop > start else b""
            return (self._b.read(0, n) if n else b"")[key]   # (a stepped slice: read the whole value)
        return self._b.read(self._index(key, n), 1)[0]

    def __setitem__(self, key, value):
        n = self._len()
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            data = bytes(memoryview(value))
            idx = range(start, stop, step)
            if len(data) != len(idx):
                raise IndexError("Blob slice assignment is wrong size")
            if step == 1:
                if data:
                    self._b.write(start, data)
                return
            for i, byte in zip(idx, data):
                self._b.write(i, bytes((byte,)))
            return
        j = self._index(key, n)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
        if not 0 <= value <= 255:
            raise ValueError("byte must be in range(0, 256)")
        self._b.write(j, bytes((value,)))

    def __delitem__(self, key):
        raise TypeError("Blob doesn't support item deletion")
