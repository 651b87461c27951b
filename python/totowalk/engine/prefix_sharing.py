"""Walk-forward prefix sharing: which unique contexts one forward pass can serve together.

Contexts of one series are prefixes of each other. Toto is causal in time (time-wise attention is
causal, the patch scaler's statistics are cumulative, rotary/xPos terms depend on relative
positions), so the state at patch p of a forward over a long context equals, up to float rounding,
the last state of a forward over its first p + 1 patches, provided both carry the same left
padding, i.e. their lengths are congruent modulo the patch size. One forward over the longest
member of such a group (the root) then serves every member, read out at the member's last patch.

One non-causal term remains: the scaler clamps each patch scale to
``[max(min_scale, g * 10**-e), g * 10**e]`` with ``g`` the std of the *whole* context. A member is
shared only if, at every patch up to its own last one, that clamp is inactive (with a margin)
under both its own ``g`` and the root's; otherwise it is forecast alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PrefixGroup", "ScalerSettings", "group_prefixes"]

# Relative distance a patch scale keeps from a clamp bound to count as "inactive": far above the
# float32/float64 rounding that could flip a comparison between the two computations.
_CLAMP_MARGIN = 1e-6


@dataclass(frozen=True)
class ScalerSettings:
    """The model's scaler settings the sharing guard needs (``TotoConfig`` fields)."""

    patch_size: int
    min_scale: float
    stabilize_with_global: bool
    scale_factor_exponent: float

    @classmethod
    def from_config(cls, config) -> ScalerSettings:
        return cls(int(config.patch_size), float(config.min_scale), bool(config.stabilize_with_global),
                   float(config.scale_factor_exponent))


@dataclass(frozen=True)
class PrefixGroup:
    """Unique contexts served by one forward over ``root``.

    Attributes
    ----------
    root : int
        Unique index of the longest member (the context actually run).
    members : np.ndarray
        (M,) int64 unique indices, the root included, longest first.
    positions : np.ndarray
        (M,) int64 patch index of each member's last patch in the root's padded array.
    """

    root: int
    members: np.ndarray
    positions: np.ndarray


def _prefix_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative count-based sums of a (V, L) float64 array: (S1, S2) each (V, L), values shifted
    by their first value for accuracy (variances do not change)."""
    shifted = values - values[:, :1]
    return np.cumsum(shifted, axis=1), np.cumsum(shifted * shifted, axis=1)


def _variances(s1: np.ndarray, s2: np.ndarray, counts: np.ndarray, ddof: int) -> np.ndarray:
    """Variances of the first ``counts`` values (counts >= 1), per variate: (V, len(counts))."""
    idx = counts - 1
    n = counts.astype(np.float64)
    m2 = np.maximum(s2[:, idx] - s1[:, idx] ** 2 / n, 0.0)
    return m2 / np.maximum(n - ddof, 1.0)


def _clamp_safe(root: np.ndarray, member_lengths: np.ndarray, settings: ScalerSettings) -> np.ndarray:
    """Per member length: True when the scaler clamp is inactive up to the member's last patch under
    both the member's global scale and the root's."""
    if not settings.stabilize_with_global:
        return np.ones(len(member_lengths), dtype=bool)
    p = settings.patch_size
    values = root.astype(np.float64)
    total = values.shape[1]
    pad = -(-total // p) * p - total
    s1, s2 = _prefix_stats(values)
    patches = (pad + total) // p
    real_counts = np.clip(np.arange(1, patches + 1) * p - pad, 0, total)  # real values up to each patch end
    # Unclamped patch scales (Bessel-corrected), all-padding patches have scale sqrt(min_scale).
    safe_counts = np.maximum(real_counts, 1)
    patch_var = np.where(real_counts > 0, _variances(s1, s2, safe_counts, ddof=1), 0.0)
    patch_scale = np.sqrt(patch_var + settings.min_scale)  # (V, patches)
    spread = 10.0 ** settings.scale_factor_exponent
    # Smallest and largest patch scale up to each patch: one comparison per member and bound.
    lowest = np.minimum.accumulate(patch_scale, axis=1)
    highest = np.maximum.accumulate(patch_scale, axis=1)
    lengths = np.asarray(member_lengths, dtype=np.int64)
    upto = (pad + lengths) // p - 1  # each member's last patch inside the root's padded array

    def inactive(g: np.ndarray) -> np.ndarray:  # g: (V, members) -> (members,)
        lower = np.maximum(settings.min_scale, g / spread)
        upper = g * spread
        return np.all((lowest[:, upto] >= lower * (1 + _CLAMP_MARGIN)) & (highest[:, upto] <= upper * (1 - _CLAMP_MARGIN)),
                      axis=0)

    g_members = np.sqrt(_variances(s1, s2, lengths, ddof=0) + settings.min_scale)  # (V, members)
    g_root = np.sqrt(_variances(s1, s2, np.array([total]), ddof=0) + settings.min_scale)  # (V, 1)
    return inactive(g_members) & inactive(np.broadcast_to(g_root, g_members.shape))


def group_prefixes(unique_series: list, settings: ScalerSettings) -> tuple[list, np.ndarray]:
    """Group unique contexts that are prefixes of a longer one with the same left padding.

    Parameters
    ----------
    unique_series : list of np.ndarray
        (V, L) contexts (already deduplicated).
    settings : ScalerSettings

    Returns
    -------
    groups : list of PrefixGroup
        Groups of at least two members.
    alone : np.ndarray
        Unique indices forecast on their own (no partner, or the clamp guard refused them).
    """
    p = settings.patch_size
    lengths = np.fromiter((s.shape[-1] for s in unique_series), dtype=np.int64, count=len(unique_series))
    buckets: dict = {}
    for i in np.argsort(-lengths, kind="stable"):
        series = unique_series[i]
        key = (int(lengths[i]) % p, series.shape[0], series[:, 0].tobytes())
        roots = buckets.setdefault(key, [])
        length = int(lengths[i])
        for chain in roots:
            if np.array_equal(unique_series[chain[0]][:, :length], series):
                chain.append(int(i))
                break
        else:
            roots.append([int(i)])
    groups, alone = [], []
    for chains in buckets.values():
        for chain in chains:
            if len(chain) == 1:
                alone.append(chain[0])
                continue
            members = np.asarray(chain, dtype=np.int64)
            safe = _clamp_safe(unique_series[chain[0]], lengths[members], settings)
            safe[0] = True  # the root is its own context
            alone.extend(int(m) for m in members[~safe])
            members = members[safe]
            if len(members) == 1:
                alone.append(int(members[0]))
                continue
            root_length = int(lengths[members[0]])
            pad = -(-root_length // p) * p - root_length
            positions = (pad + lengths[members]) // p - 1
            groups.append(PrefixGroup(int(members[0]), members, positions.astype(np.int64)))
    return groups, np.asarray(sorted(alone), dtype=np.int64)
