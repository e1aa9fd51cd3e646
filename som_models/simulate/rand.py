"""Counter-based random numbers: the same uniform for the same (seed, stream, person, year, slot).

Potential outcomes need *common random numbers*: a participant's outcome without the intervention, Y(0),
and with it, Y(1), must be generated from the same draws so that Y(1) − Y(0) is the effect and nothing else.
A sequential generator cannot give that cheaply (the two paths consume different numbers of draws), so the
worlds derive every draw from a hash of its coordinates:

``u = (splitmix64(seed, stream, c1, c2, …) >> 11 + ½) / 2⁵³``  — a float in the open interval (0, 1),

where ``splitmix64`` is the finaliser of Steele, Lea & Flood (2014, "Fast splittable pseudorandom number
generators", OOPSLA) applied after adding each counter times the golden-ratio increment 0x9E3779B97F4A7C15.
Draws with different coordinates are (for simulation purposes) independent; persons can be generated in
any order or block and still get the same numbers.

Distributions are obtained by inversion, ``X = F⁻¹(u)``, so a larger rate gives a stochastically larger
value from the same ``u`` (monotone coupling): with Poisson counts, Y(1) ≥ Y(0) whenever the rate rises.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import special

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (bijective on 64-bit integers)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


class Streams:
    """Named streams of counter-based uniforms for one world seed."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._key = np.uint64(self.seed & _MASK64)

    def uniform(self, stream: str, *counters) -> np.ndarray:
        """Uniforms in (0, 1), one per element of the broadcast ``counters`` (non-negative integers)."""
        with np.errstate(over="ignore"):
            h = _mix(np.asarray(self._key ^ np.uint64(zlib.crc32(stream.encode("utf-8"))), dtype=np.uint64))
            for c in counters:
                c = np.asarray(c).astype(np.uint64)
                h = _mix(h + (c + np.uint64(1)) * _GOLDEN)
        return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / 9007199254740992.0


def poisson(u: np.ndarray, mu: np.ndarray, cap: int = 60) -> np.ndarray:
    """Poisson(mu) by inversion of the CDF: the smallest k with F(k) ≥ u (k capped at ``cap``)."""
    u, mu = np.broadcast_arrays(np.asarray(u, float), np.asarray(mu, float))
    p = np.exp(-mu)
    cdf = p.copy()
    k = np.zeros(u.shape, dtype=np.int32)
    active = u > cdf
    j = 0
    while active.any() and j < cap:
        j += 1
        p = np.where(active, p * mu / j, p)
        cdf = np.where(active, cdf + p, cdf)
        k += active
        active &= u > cdf
    return k


def gamma(u: np.ndarray, shape: float, mean: np.ndarray | float) -> np.ndarray:
    """Gamma(shape, scale = mean / shape) by inversion of the regularised incomplete gamma function."""
    return special.gammaincinv(shape, np.asarray(u, float)) * (np.asarray(mean, float) / shape)


def geometric_days(u: np.ndarray, mean: np.ndarray | float) -> np.ndarray:
    """Lengths ≥ 1 from a geometric distribution with the given mean: ``1 + floor(log(u) / log(1 − 1/mean))``."""
    mean = np.maximum(np.asarray(mean, float), 1.0 + 1e-9)
    return 1 + np.floor(np.log(u) / np.log1p(-1.0 / mean)).astype(np.int64)


def choice(u: np.ndarray, values, probs) -> np.ndarray:
    """Categorical draw by inversion: ``values[k]`` where u falls in the k-th cumulative probability bin."""
    cum = np.cumsum(np.asarray(probs, float))
    cum /= cum[-1]
    return np.asarray(values)[np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)]
