"""The compact, lossless form of a run of samples (one tag, one hour): a few bytes per sample.

Used for native PostgreSQL partitions older than the compaction age (``campo_history_block``
rows), where a plain sample row costs about 70 bytes with its index. A block holds, in one
zlib stream:

- times as microseconds: the first, then deltas of deltas, zigzag-encoded, byte-shuffled
  (a periodic scan gives near-zero second differences: ~1-2 bytes a sample);
- one flag byte per sample: quality (2 bits) and kind (null, number, text);
- numbers either as decimal-scaled integers (``k / 10**d`` or ``k * 10**-d`` reproduces
  every value exactly: register values scaled by a power of ten) delta-encoded, or as the
  XOR of each float64's bits with the previous one's (float32 sources leave the low 29
  bits zero), byte-shuffled so equal bytes of neighbours sit together;
- texts as a JSON list.

:func:`decode` gives back exactly what :func:`encode` was given (the tests check
bit-for-bit equality of floats, including -0.0 and NaN payloads are not expected).
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from array import array
from collections.abc import Sequence
from itertools import accumulate
from operator import xor

VERSION = 1
#: value encodings
NONE, XOR64, DEC_DIV, DEC_MUL = 0, 1, 2, 3
#: kinds in the flag byte (bits 2-3); quality is bits 0-1
K_NULL, K_NUM, K_TEXT = 0, 1, 2
_HEAD = struct.Struct("<BBBbI")  # version, encoding, decimals, spare, count
_MAX_DECIMALS = 6
_MASK64 = (1 << 64) - 1

Row = tuple[int, float | None, str | None, int]
"""``(ts_us, value, text, quality)``: one sample as the stores hold it."""


def _shuffle(data: bytes, width: int) -> bytes:
    return b"".join(data[k::width] for k in range(width))


def _unshuffle(data: bytes, width: int) -> bytes:
    n = len(data) // width
    out = bytearray(len(data))
    for k in range(width):
        out[k::width] = data[k * n:(k + 1) * n]
    return bytes(out)


def _zigzag(values: Sequence[int]) -> array[int]:
    return array("Q", [((v << 1) ^ (v >> 63)) & _MASK64 for v in values])


def _unzigzag(values: Sequence[int]) -> list[int]:
    return [(v >> 1) ^ -(v & 1) for v in values]


def _decimals(nums: list[float]) -> tuple[int, int] | None:
    """``(encoding, d)`` when every number is an integer over a power of ten, else None."""
    for d in range(_MAX_DECIMALS + 1):
        scale = 10.0 ** d
        step = 10.0 ** -d
        div = mul = True
        for v in nums:
            if not math.isfinite(v):
                return None
            k = round(v * scale)
            if div and k / scale != v:
                div = False
            if mul and k * step != v:
                mul = False
            if not (div or mul) or abs(k) >= 1 << 52:
                break
        else:
            return (DEC_DIV if div else DEC_MUL), d
    return None


def encode(rows: Sequence[Row]) -> bytes:
    """One block from rows sorted by time (distinct times)."""
    n = len(rows)
    times = [r[0] for r in rows]
    deltas = [b - a for a, b in zip(times, times[1:], strict=False)]
    dod = [times[0], *(deltas[:1]), *(b - a for a, b in zip(deltas, deltas[1:], strict=False))]
    flags = bytearray(n)
    nums: list[float] = []
    texts: list[str] = []
    for i, (_ts, value, text, quality) in enumerate(rows):
        if value is not None:
            flags[i] = quality | (K_NUM << 2)
            nums.append(value)
        elif text is not None:
            flags[i] = quality | (K_TEXT << 2)
            texts.append(text)
        else:
            flags[i] = quality
    encoding, decimals = NONE, 0
    body = b""
    if nums:
        dec = _decimals(nums)
        if dec is not None:
            encoding, decimals = dec
            scale = 10.0 ** decimals
            ks = [round(v * scale) for v in nums]
            kd = [ks[0], *(b - a for a, b in zip(ks, ks[1:], strict=False))]
            body = _shuffle(_zigzag(kd).tobytes(), 8)
        else:
            encoding = XOR64
            bits = array("Q", array("d", nums).tobytes())
            xored = array("Q", [bits[0], *(a ^ b for a, b in zip(bits, bits[1:],
                                                                  strict=False))])
            body = _shuffle(xored.tobytes(), 8)
    text_part = json.dumps(texts, ensure_ascii=False).encode() if texts else b""
    payload = b"".join((
        struct.pack("<III", len(nums), len(body), len(text_part)),
        _shuffle(_zigzag(dod).tobytes(), 8), bytes(flags), body, text_part))
    return _HEAD.pack(VERSION, encoding, decimals, 0, n) + zlib.compress(payload, 9)


def decode(block: bytes) -> list[Row]:
    """The rows :func:`encode` was given."""
    version, encoding, decimals, _spare, n = _HEAD.unpack_from(block)
    if version != VERSION:
        raise ValueError(f"history block version {version} is not {VERSION}")
    payload = zlib.decompress(block[_HEAD.size:])
    n_nums, n_body, n_text = struct.unpack_from("<III", payload)
    at = 12
    dod = _unzigzag(array("Q", _unshuffle(payload[at:at + 8 * n], 8)))
    at += 8 * n
    flags = payload[at:at + n]
    at += n
    body = payload[at:at + n_body]
    at += n_body
    texts: list[str] = json.loads(payload[at:at + n_text]) if n_text else []
    times = list(accumulate(accumulate(dod[1:]), initial=dod[0])) if n > 1 else dod[:1]
    nums: list[float] = []
    if n_nums:
        raw = array("Q", _unshuffle(body, 8))
        if encoding == XOR64:
            nums = list(array("d", array("Q", accumulate(raw, xor)).tobytes()))
        else:
            ks = accumulate(_unzigzag(raw))
            if encoding == DEC_DIV:
                scale = 10.0 ** decimals
                nums = [k / scale for k in ks]
            else:
                step = 10.0 ** -decimals
                nums = [k * step for k in ks]
    out: list[Row] = []
    ni = ti = 0
    for ts, f in zip(times, flags, strict=True):
        kind = f >> 2
        if kind == K_NUM:
            out.append((ts, nums[ni], None, f & 3))
            ni += 1
        elif kind == K_TEXT:
            out.append((ts, None, texts[ti], f & 3))
            ti += 1
        else:
            out.append((ts, None, None, f & 3))
    return out
