"""A search run: its settings and the one preset registry (:mod:`.settings`), the checked plan
made from the command line (:mod:`.plan`), Algorithm 1 (:mod:`.pipeline`), the choice of the
final models along the front (:mod:`.selection`), the run directory that owns every path in it
(:mod:`.rundir`) and the summary and plots (:mod:`.report`).
"""
