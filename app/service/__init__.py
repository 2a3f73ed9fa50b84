"""Docent as a local service: an OpenAI-compatible HTTP API over the library.

``docent serve`` runs it headless; the window runs it in its own process when
"Local API" is on. It uses ``app.core`` only (never Qt or the window's
workers). The parts:

* :mod:`app.service.engine` -- the service itself: the library, the models'
  loading state, keys, rate limits, the generation queue, the embedding
  batcher and the metrics (no HTTP in it).
* :mod:`app.service.http` -- the FastAPI routes over an engine.
* :mod:`app.service.runner` -- uvicorn in a thread (the window, tests) or in
  the foreground (``docent serve``).
"""
