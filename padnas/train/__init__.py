"""Training: the run's shape (:mod:`.config`: ``TrainConfig``, ``Stage``), the loop that trains
supernets and stand-alone networks with per-epoch checkpoints (:mod:`.loop`), the checkpoint
format (:mod:`.checkpoint`), autocast precision (:mod:`.precision`) and the process group of a
DDP run (:mod:`.distributed`). The named presets live in :mod:`padnas.run.settings`.
"""
