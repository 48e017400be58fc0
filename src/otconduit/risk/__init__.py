"""Risk per asset with its reasons: criticality, exposure through the policy's conduits,
known vulnerabilities and open alerts, as a 0-100 score that is never a bare number.

``risk_rows(store, policy, ip)`` gives the rows of ``conduit risk``; ``attach(store,
assets, policy)`` adds ``risk`` to asset rows; :mod:`.factors` holds the weights.
"""

from otconduit.risk.assess import COLUMNS, RiskModel, attach, risk_rows, why

__all__ = ["COLUMNS", "RiskModel", "attach", "risk_rows", "why"]
