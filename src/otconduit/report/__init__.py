"""The assessment report (``conduit report``): what Conduit knows about a plant, arranged
by the NIST CSF 2.0 functions and the convergence roadmap's KPIs, as one self-contained
HTML document or a PDF a plant can hand to management and auditors.

Layers, each a small module: :mod:`.facts` reads the store once (assets placed in zones,
conversations with their operation classes, alerts, violations, incidents, all cut to
the report's time window); :mod:`.gather` turns those facts into the evidence for each
CSF function, with :mod:`.exposure` (IEC 62443 observations, the IDMZ KPI),
:mod:`.production` (OEE, downtime, energy: only when the production package and a
historian are at hand) and :mod:`.risk` (per-asset risk: only when that package is
installed); :mod:`.charts`, :mod:`.attackmap` and :mod:`.netmap` draw the figures as
inline SVG; :mod:`.render_html` fills the template and :mod:`.pdf` prints it with
headless Chromium. The store is opened read-only: a report never changes what it reports.
"""


class ReportError(Exception):
    """Input the report cannot be made from (missing database, bad policy or gateway
    file, output it cannot write, no PDF renderer); the message is one line."""
