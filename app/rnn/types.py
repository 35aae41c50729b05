"""Shared type aliases for the numeric core."""

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
"""A float64 array; its shape is given where it is used."""

Params = dict[str, Any]
"""PyTorch-style parameter name -> array, e.g. 'rnn.weight_hh_l0' -> (G*H, H)."""

Positions = npt.NDArray[np.intp]
"""Integer indices of positions (or rows), e.g. (N,)."""

Mask = npt.NDArray[np.bool_]
"""A boolean array, e.g. (T,) positions that overflowed."""
