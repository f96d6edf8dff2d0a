"""What does a block or an architecture cost on a device, according to its table?

``table``: the versioned LUT JSON (load, validate, save); ``regression``: the scikit-learn
fallback for holes; ``model``: :class:`LatencyModel`, vectorised prediction over architectures.
"""

from latency.lut.model import LatencyModel
from latency.lut.table import Lut, LutError, load_lut, validate_lut_dict

__all__ = ["LatencyModel", "Lut", "LutError", "load_lut", "validate_lut_dict"]
