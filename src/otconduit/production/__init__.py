"""Production KPIs from the gateway's historian: OEE per ISO 22400-2, energy and CO2e.

The model is part of the gateway config (``production:``, :mod:`.model`); the numbers
come from the historian the gateway fills (:mod:`.source`). Pure computation lives in
:mod:`.states`, :mod:`.calendar`, :mod:`.series`, :mod:`.oee` and :mod:`.energy`; the
entry points for code are in :mod:`.api`. Nothing is imported here, so the gateway's
config can import :mod:`.model` without pulling in the historian.
"""
