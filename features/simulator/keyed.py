"""Random numbers addressed by keys instead of drawn in sequence.

Where a sequential generator would hand out different numbers when more rows appear
earlier in an array (a longer simulation adds spells, releases and obligations between
existing ones), the simulator uses `uniform(seed, stream, *keys)`: a counter-based hash
(splitmix64) of the keys. The same row always gets the same number, which keeps the first
delivery identical whether or not a second, later one is simulated.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return np.asarray(z ^ (z >> np.uint64(31)))


def uniform(seed: int, stream: int, *keys: np.ndarray | int) -> np.ndarray:
    """Uniforms in [0, 1), one per element of the broadcast `keys`."""
    shape = np.broadcast_shapes(*(np.shape(k) for k in keys))
    with np.errstate(over="ignore"):
        h = _mix(np.full(shape, np.uint64(seed & 0xFFFFFFFFFFFFFFFF)))
        h = _mix(h ^ np.uint64(stream))
        for k in keys:
            h = _mix(h ^ np.asarray(k).astype(np.int64).astype(np.uint64))
    return np.asarray((h >> np.uint64(11)).astype(np.float64) * 2.0**-53)


def normal(seed: int, stream: int, *keys: np.ndarray | int) -> np.ndarray:
    """Standard normals (Box-Muller on two keyed uniforms)."""
    u1 = uniform(seed, stream, *keys, 1)
    u2 = uniform(seed, stream, *keys, 2)
    return np.asarray(np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2))


def exponential(seed: int, stream: int, mean: float, *keys: np.ndarray | int) -> np.ndarray:
    return np.asarray(-mean * np.log1p(-uniform(seed, stream, *keys)))
