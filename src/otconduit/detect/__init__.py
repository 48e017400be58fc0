"""Detection and response: decoded operations, scans, baselines and policy breaches
become alerts with ATT&CK for ICS techniques, evidence and a response runbook."""
