"""Predictive maintenance: learn how a machine's sensors behave when it is healthy and say
when, where and by how much they stop behaving so.

- :mod:`.changes` — the CSV scorer (`detect`): per-sensor change detection (a short mean
  against a drifting reference, in units of a spread learnt online, two-sided CUSUM) with
  segment hysteresis; one alarm per fault from its change point until it is gone.
- :mod:`.model` — the historian watch's model: a short-window mean of the standardised
  sensors against a reference of normal behaviour, a multivariate (shrunk Mahalanobis)
  distance, a threshold from the training rows and change-point hysteresis.
- :mod:`.common` — what both share (errors, the scored-rows type, a trailing mean).
- :mod:`.table` — reading a table of sensor readings (the SKAB layout) with one-line errors.
- :mod:`.scoring` — F1 / false-alarm rate / missed-alarm rate, SKAB's binary protocol.
- :mod:`.watch` — machines and their condition tags from a gateway config, their history
  from the historian, ``maintenance-anomaly`` findings into the alert store.
"""
