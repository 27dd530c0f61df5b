"""Reports and cache manifests as plain JSON: numpy scalars and arrays to Python, inf/nan to null."""
from __future__ import annotations

import numpy as np


def jsonable(obj):
    """``obj`` with dict keys as strings, tuples as lists, numpy values as Python ones, non-finite floats as None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
