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

__all__ = ["PrefixGroup", "PrefixGroups", "ScalerSettings", "group_prefixes"]

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
        return cls(
            int(config.patch_size),
            float(config.min_scale),
            bool(config.stabilize_with_global),
            float(config.scale_factor_exponent),
        )


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


def _clamp_safe(
    family: np.ndarray, lengths: np.ndarray, root_lengths: np.ndarray, settings: ScalerSettings
) -> np.ndarray:
    """Per member (a prefix of ``family``, (V, T), of length ``lengths[i]``, read out of the forward
    over its group root's first ``root_lengths[i]`` values): True when the scaler clamp is inactive
    up to the member's last patch under both the member's global scale and the root's.

    Padding is on the left only and shorter than a patch, so a patch of any member or root ends
    after c real values, c = L, L - p, ... down to 1..p (L its length), and its unclamped scale
    depends on c alone: the scales of one series, and their running minimum and maximum per class
    of c modulo p, are computed once for every member and root of the series.
    """
    if not settings.stabilize_with_global:
        return np.ones(len(lengths), dtype=bool)
    p = settings.patch_size
    values = family.astype(np.float64)
    v_count, total = values.shape
    s1, s2 = _prefix_stats(values)
    counts = np.arange(1, total + 1)
    # unclamped (Bessel-corrected) scale of a patch ending after c values, c = 1..T
    scale = np.sqrt(_variances(s1, s2, counts, ddof=1) + settings.min_scale)
    blocks = -(-total // p)
    lowest = np.full((v_count, blocks * p), np.inf)
    highest = np.full((v_count, blocks * p), -np.inf)
    lowest[:, :total] = highest[:, :total] = scale
    # running extremes over c, c - p, c - 2p, ...: along the block axis of a (V, blocks, p) view
    lowest = np.minimum.accumulate(lowest.reshape(v_count, blocks, p), axis=1).reshape(v_count, -1)
    highest = np.maximum.accumulate(highest.reshape(v_count, blocks, p), axis=1).reshape(v_count, -1)
    spread = 10.0**settings.scale_factor_exponent
    upto = np.asarray(lengths, dtype=np.int64) - 1

    def inactive(g: np.ndarray) -> np.ndarray:  # g: (V, members) -> (members,)
        lower = np.maximum(settings.min_scale, g / spread)
        upper = g * spread
        return np.all(
            (lowest[:, upto] >= lower * (1 + _CLAMP_MARGIN)) & (highest[:, upto] <= upper * (1 - _CLAMP_MARGIN)), axis=0
        )

    g_members = np.sqrt(_variances(s1, s2, np.asarray(lengths, dtype=np.int64), ddof=0) + settings.min_scale)
    g_roots = np.sqrt(_variances(s1, s2, np.asarray(root_lengths, dtype=np.int64), ddof=0) + settings.min_scale)
    return inactive(g_members) & inactive(g_roots)


def _is_prefix(longer: np.ndarray, shorter: np.ndarray) -> bool:
    """Whether ``shorter`` (V, L) equals ``longer[:, :L]``; views of the same memory (walk-forward
    slices of one array) are, without reading it."""
    length = shorter.shape[1]
    if longer.shape[0] != shorter.shape[0] or longer.shape[1] < length:
        return False
    if longer.dtype != shorter.dtype:
        return bool((longer[:, :length] == shorter).all())
    if (
        longer.__array_interface__["data"][0] == shorter.__array_interface__["data"][0]
        and longer.strides == shorter.strides
    ):
        return True
    if longer.shape[0] == 1 and longer.flags.c_contiguous and shorter.flags.c_contiguous:
        # one row: compare the bytes (two copies and a memcmp beat an element-wise comparison here)
        return longer[0, :length].tobytes() == shorter.tobytes()
    return bool((longer[:, :length] == shorter).all())


@dataclass(frozen=True)
class PrefixGroups:
    """Groups as flat arrays (the plan reads them so); iterating gives each as a PrefixGroup.

    Attributes
    ----------
    roots : np.ndarray
        (G,) unique index of each group's root.
    starts : np.ndarray
        (G + 1,) offsets: group g's members are ``members[starts[g]:starts[g + 1]]``.
    members, positions : np.ndarray
        (M,) unique indices, each group's longest (its root) first, and each member's last patch
        in its root's padded array.
    """

    roots: np.ndarray
    starts: np.ndarray
    members: np.ndarray
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.roots)

    def __iter__(self):
        for g, root in enumerate(self.roots):
            span = slice(self.starts[g], self.starts[g + 1])
            yield PrefixGroup(int(root), self.members[span], self.positions[span])


def group_prefixes(
    unique_series: list, settings: ScalerSettings, families=None, lengths: np.ndarray | None = None
) -> tuple[PrefixGroups, np.ndarray]:
    """Group unique contexts that are prefixes of a longer one with the same left padding.

    Contexts are first gathered into families, the prefixes of one longest context (a series);
    a family's members of equal length modulo the patch size form a group whose longest member is
    its root, and the scaler-clamp guard runs once per family.

    Parameters
    ----------
    unique_series : list of np.ndarray
        (V, L) contexts (already deduplicated).
    settings : ScalerSettings
    families : array-like of int, optional
        Per context, the id of a series it is a prefix of (walk-forward requests know it): the
        families are taken from it and no values are compared.
    lengths : np.ndarray, optional
        (U,) the contexts' lengths, where the caller has them.

    Returns
    -------
    groups : PrefixGroups
        Groups of at least two members, by family then residue (length mod the patch size).
    alone : np.ndarray
        Unique indices forecast on their own (no partner, or the clamp guard refused them).
    """
    p = settings.patch_size
    if lengths is None:
        lengths = np.fromiter((s.shape[-1] for s in unique_series), dtype=np.int64, count=len(unique_series))
    ids = _family_ids(unique_series, lengths) if families is None else np.asarray(families, dtype=np.int64)
    if ids.shape != lengths.shape:
        raise ValueError(f"families: {ids.shape[0]} ids for {lengths.shape[0]} contexts")
    residue = lengths % p
    # by family, then residue, longest first: each (family, residue) run is a group, its root first
    order = np.lexsort((-lengths, residue, ids))
    own, fam, res = lengths[order], ids[order], residue[order]
    new_family = np.r_[True, fam[1:] != fam[:-1]] if len(order) else np.zeros(0, bool)
    new_group = new_family | np.r_[True, res[1:] != res[:-1]] if len(order) else new_family
    group_of = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)
    root_length = own[group_start][group_of]
    safe = np.empty(len(order), dtype=bool)
    bounds = np.r_[np.flatnonzero(new_family), len(order)]
    for a, b in zip(bounds[:-1], bounds[1:]):  # the guard reads each family's longest series once
        longest = unique_series[order[a + int(np.argmax(own[a:b]))]]
        safe[a:b] = _clamp_safe(longest, own[a:b], root_length[a:b], settings)
    safe[group_start] = True  # a root is its own context
    sizes = np.bincount(group_of[safe], minlength=len(group_start))
    shared = safe & (sizes[group_of] > 1)
    alone = np.sort(order[~shared])
    kept = np.flatnonzero(shared)
    pad = -(-root_length[kept] // p) * p - root_length[kept]
    kept_sizes = sizes[sizes > 1]
    groups = PrefixGroups(
        roots=order[group_start[sizes > 1]],
        starts=np.r_[0, np.cumsum(kept_sizes)].astype(np.int64),
        members=order[kept],
        positions=(pad + own[kept]) // p - 1,
    )
    return groups, alone.astype(np.int64)


def _family_ids(unique_series: list, lengths: np.ndarray) -> np.ndarray:
    """Per context, the index of its family among :func:`_families`."""
    ids = np.empty(len(unique_series), dtype=np.int64)
    for k, family in enumerate(_families(unique_series, lengths)):
        ids[family] = k
    return ids


def _families(unique_series: list, lengths: np.ndarray) -> list:
    """Contexts gathered into families, each the prefixes of its first (longest) member: lists of
    indices, longest first."""
    by_start: dict = {}  # (variates, first values) -> families
    for i in np.argsort(-lengths, kind="stable"):
        series = unique_series[i]
        families = by_start.setdefault((series.shape[0], series[:, 0].tobytes()), [])
        for family in families:
            if _is_prefix(unique_series[family[0]], series):
                family.append(int(i))
                break
        else:
            families.append([int(i)])
    return [family for families in by_start.values() for family in families]
