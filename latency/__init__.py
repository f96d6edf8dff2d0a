"""On-device latency for padnas: op variants -> TFLite -> measured on a device -> lookup table."""
