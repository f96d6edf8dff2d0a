"""The search of one stage: the latency window and its gate (:mod:`.window`), one-shot evaluation
with BatchNorm recalibration (:mod:`.oneshot`), CES, the constrained NSGA-II of pymoo
(:mod:`.ces`), the op distribution and pruning (:mod:`.prune`) and the sharing of evaluations
among DDP ranks (:mod:`.sharding`).

The search never imports the latency toolkit: it is handed a latency function, as Once-for-All's
evolution finder is handed its predictor.
"""
