"""On-device latency for padnas: op variants -> TFLite -> measured on a device -> lookup table.

Subpackages, each answering one question, imported one way (top to bottom): ``cli`` ->
``transfer`` -> ``networks`` -> ``profiling`` -> ``devices`` -> ``lut`` -> ``backends`` ->
``export`` -> ``variants`` -> ``errors`` / ``cache``.
"""
