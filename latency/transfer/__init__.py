"""How is one device's LUT estimated from another's measurements and published figures?

``fit``: the transfer model and its leave-one-out check; ``estimate``: the end-to-end estimate
written into a device profile.
"""

from latency.transfer.estimate import EstimateResult, run_estimate, update_profile
from latency.transfer.fit import TransferError, TransferFit, evaluate_transfer, fit_transfer

__all__ = [
    "EstimateResult",
    "TransferError",
    "TransferFit",
    "evaluate_transfer",
    "fit_transfer",
    "run_estimate",
    "update_profile",
]
