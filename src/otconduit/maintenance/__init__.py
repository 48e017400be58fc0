"""Predictive maintenance: learn how a machine's sensors behave when it is healthy and say
when, where and by how much they stop behaving so.

- :mod:`.model` — the detector: a short-window mean of the standardised sensors compared
  with a reference of normal behaviour, a multivariate (shrunk Mahalanobis) distance, a
  threshold from the training rows and change-point hysteresis. One online class serves
  both the CSV scorer and the historian watch.
- :mod:`.table` — reading a table of sensor readings (the SKAB layout) with one-line errors.
- :mod:`.scoring` — F1 / false-alarm rate / missed-alarm rate, SKAB's binary protocol.
- :mod:`.watch` — machines and their condition tags from a gateway config, their history
  from the historian, ``maintenance-anomaly`` findings into the alert store.
"""
