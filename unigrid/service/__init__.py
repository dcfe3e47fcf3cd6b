"""The web service: query API (JSON), review pages and audit pages (Simplified Chinese).

``create_app(settings)`` in :mod:`unigrid.service.app` builds the FastAPI application; ``unigrid
serve`` runs it with uvicorn. Who may call what, and which fields each role sees masked, is
declared once in :mod:`unigrid.service.policy`.
"""
