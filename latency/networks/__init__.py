"""What does a network described as a layer list cost, predicted or measured?

``description``: the layer-list format; ``checks``: its validation; ``blocks``: the torch modules
of the layer kinds our space lacks (ResNet's basic block, ShuffleNetV2's unit); ``units``: a
network cut into LUT-keyed units; ``latency``: prediction from a LUT and measurement on a device;
``onnx_import`` (over ``onnx_graph``): an ONNX model file read as a layer list.
"""

from latency.networks.checks import load_networks, select_networks
from latency.networks.description import Layer, NetDescError, Network
from latency.networks.latency import (
    NetPrediction,
    export_network,
    measure_network,
    measure_onnx_model,
    measure_units,
    predict_network,
)
from latency.networks.units import Unit, network_units

__all__ = [
    "Layer",
    "NetDescError",
    "NetPrediction",
    "Network",
    "Unit",
    "export_network",
    "load_networks",
    "measure_network",
    "measure_onnx_model",
    "measure_units",
    "network_units",
    "predict_network",
    "select_networks",
]
