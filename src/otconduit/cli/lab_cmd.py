"""``conduit lab``: run the simulated plant (register with ``app.command()(lab)``).

The command itself lives in the lab package so that ``python -m otconduit.lab`` runs the
very same code; this module only imports the lab, never the monitor.
"""

from otconduit.lab.command import lab

__all__ = ["lab"]
