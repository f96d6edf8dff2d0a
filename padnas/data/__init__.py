"""Data: the data sets a search trains on (:mod:`.datasets`: ``load_data`` and ``DataBundle``),
Fashion-MNIST's IDX files (:mod:`.fashion`), grey-scale image sets (:mod:`.grey`), the seeded
class-balanced splits (:mod:`.splits`) and the batch feeder (:mod:`.loader`).
"""
