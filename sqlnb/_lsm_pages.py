"""LSM data pages and records: the layout ``sqlnb._lsm_file.verify()`` walks and the URL opener counts.

Page numbers count from 1; the first page of a block starts after a 4-byte link and
the last one ends with the link to the next block (lsm1's ``lsm_file.c``). A record
is a type byte and SQLite4 varints (pointer, key length, value length) followed by
the key and the value; a record may continue on the next page (``lsm_sorted.c``).
Data pages carry no checksum: what the walk checks is the structure and the key order.
"""
from __future__ import annotations

import os
import struct

META_PAGE = 4096  # the file's two meta pages (checkpoints) come first
_BTREE_PAGE, _SKIP_THIS_PAGE = 0x0001, 0x0004
_REC_INSERT, _REC_SEPARATOR, _REC_SYSTEM = 0x08, 0x10, 0x20


def varint(buf, pos: int, end: int):
    """An SQLite4 varint (lsm's record header integers) at ``buf[pos:]``: (value, new position)."""
    if pos >= end:
        raise ValueError("a record header runs past its page")
    b0 = buf[pos]
    if b0 <= 240:
        return b0, pos + 1
    if b0 <= 248:
        if pos + 2 > end:
            raise ValueError("a record header runs past its page")
        return (b0 - 241) * 256 + buf[pos + 1] + 240, pos + 2
    size = b0 - 246 if b0 < 255 else 9
    if pos + size > end:
        raise ValueError("a record header runs past its page")
    tail = int.from_bytes(buf[pos + 1:pos + size], "big")
    return (2288 + tail if b0 == 249 else tail), pos + size



def walk_segment(fd, size: int, pgsz: int, blksz: int, first: int, last: int):
    """Walk one segment's pages (page numbers count from 1, block links as lsm_file.c has them)."""
    per_block = blksz // pgsz
    first_on_block1 = 1 + (2 * META_PAGE + pgsz - 1) // pgsz
    max_pages = size // pgsz
    pg, pages, records = first, 0, 0
    carry = 0          # bytes of a record that continue on the next data page
    key_need = 0       # of those, bytes that still belong to its key
    key = b""          # the key being assembled
    prev = None        # (topic, key) of the previous record, for the order check
    pending = None     # the spanning record's topic until its key is complete
    while True:
        if pg < first_on_block1 or pg > max_pages:
            raise ValueError(f"page {pg} is outside the file ({max_pages} pages)")
        pages += 1
        if pages > max_pages:
            raise ValueError("the block links loop")
        raw = os.pread(fd, pgsz, (pg - 1) * pgsz)
        if len(raw) < pgsz:
            raise ValueError(f"page {pg} is cut short")
        is_first = pg % per_block == 1 or (pg < per_block and pg == first_on_block1)
        is_last = pg % per_block == 0
        data = raw[4:] if is_first else raw
        n_data = pgsz - 4 if (is_first or is_last) else pgsz
        n_rec = struct.unpack_from(">H", data, n_data - 2)[0]
        flags = struct.unpack_from(">H", data, n_data - 4)[0]
        eof = n_data - 12 - 2 * n_rec
        if eof <= 0:
            raise ValueError(f"page {pg}: {n_rec} records do not fit a page")
        if not flags & _BTREE_PAGE:
            pos = 0
            if carry:
                take = min(carry, eof)
                if key_need:
                    k = min(key_need, take)
                    key += data[:k]
                    key_need -= k
                    if not key_need and pending is not None:
                        prev = _order(prev, pending, key, pg)
                        pending = None
                carry -= take
                pos = take
                if carry and n_rec:
                    raise ValueError(f"page {pg}: a record starts inside the previous page's spanning record")
            offsets = struct.unpack_from(f">{n_rec}H", data, eof) if n_rec else ()
            offsets = offsets[::-1]  # cell 0's offset sits nearest the footer
            for c, off in enumerate(offsets):
                if off < pos or off >= eof:
                    raise ValueError(f"page {pg}: record {c} starts at byte {off}, outside {pos}..{eof - 1}")
                etype = data[off]
                if etype & 0x80 or not etype & (0x0F | _REC_SEPARATOR):
                    raise ValueError(f"page {pg}: record {c} has the invalid type byte {etype:#04x}")
                q = off + 1
                _, q = varint(data, q, eof)          # the pointer into the next level
                n_key, q = varint(data, q, eof)
                n_val = 0
                if etype & _REC_INSERT:
                    n_val, q = varint(data, q, eof)
                body = n_key + n_val
                records += 1
                topic = etype & _REC_SYSTEM
                skip = bool(flags & _SKIP_THIS_PAGE)
                if q + body <= eof:
                    prev = prev if skip else _order(prev, topic, data[q:q + n_key], pg)
                    pos = q + body
                else:
                    if c != len(offsets) - 1:
                        raise ValueError(f"page {pg}: record {c} runs past the page but is not its last")
                    carry = body - (eof - q)
                    have = min(n_key, eof - q)
                    key, key_need = data[q:q + have], n_key - have
                    if key_need:
                        pending = None if skip else topic
                    elif not skip:
                        prev = _order(prev, topic, key, pg)
                    pos = eof
        if pg == last:
            break
        if is_last:
            nxt = struct.unpack_from(">I", raw, pgsz - 4)[0]
            if not 1 <= nxt <= max(1, size // blksz + 1):
                raise ValueError(f"page {pg}: the link to the next block ({nxt}) points outside the file")
            pg = 1 + (nxt - 1) * per_block if nxt > 1 else first_on_block1
        else:
            pg += 1
    if carry:
        raise ValueError(f"the last record runs {carry} bytes past the segment's last page {last}")
    return pages, records


def _order(prev, topic, key: bytes, pg: int):
    """Keys of a segment increase strictly (system keys after user keys); returns the new ``prev``.

    lsm's default order (bytes, then length), the one lsm1 uses; a file written with a custom
    lsm comparison function would be reported out of order.
    """
    cur = (topic, key)
    if prev is not None and cur <= prev:
        raise ValueError(f"page {pg}: keys out of order ({prev[1][:16]!r} then {key[:16]!r})")
    return cur



def count_value_fields(blob: bytes) -> int:
    """How many value fields an lsm1 value record holds (its TYPE/CONTENT pairs)."""
    n, pos = 0, 0
    while pos < len(blob):
        try:
            v, pos = varint(blob, pos, len(blob))
        except ValueError:
            break
        if v % 6:
            pos += v // 6
        n += 1
    return n if pos == len(blob) else 1

