"""Monitoring after promotion (issue 13): the pure core.

Input drift (`drift`), label-free performance estimates from calibrated probabilities
(`estimate`) and realised performance on a matured cohort with the estimate's own error
(`realised`), overall and per group, with thresholds from ``configs/monitoring.yaml``
(`config`). Frames in, typed results out; no I/O here (the command, the store and the pages
read and write around these functions).
"""
