"""The web console: one page for IT and OT (``conduit console``).

``create_app(settings)`` (:mod:`otconduit.console.app`) builds a FastAPI application
serving HTML pages and a REST API under ``/api`` from the monitor's store, behind
logins kept in the console's own database (:mod:`otconduit.console.authdb`).
Imported only by the ``console`` and ``user`` commands, so the rest of the CLI does not
load the web stack.
"""
