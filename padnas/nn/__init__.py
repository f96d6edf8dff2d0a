"""The networks (torch): the blocks that realise each op name (:mod:`.ops`, with the fast
small-map depthwise convolution of :mod:`.dwconv`), the single-path supernet and the stand-alone
child network (:mod:`.supernet`), their initialisation (:mod:`.initialize`) and their MACs and
parameters at deployment size (:mod:`.complexity`).

Each block extracts its own sub-network: ``Supernet.extract(arch)`` asks every mixed layer for
the chosen op's weights, as Once-for-All's dynamic layers do. Modules are imported from their
own names (``from padnas.nn.supernet import Supernet``) so that importing the package costs
nothing.
"""
