"""``profkit serve``: an HTTP server (FastAPI on uvicorn) for a diffusers pipeline that times every request.

:mod:`.settings` what the server is asked to do, :mod:`.requests` the validated request shape, :mod:`.timing` the
per-request phases and their ``Server-Timing`` header, :mod:`.metrics` the Prometheus metrics, :mod:`.worker` the
bounded queue, batcher and the one thread that runs the pipeline, :mod:`.engine` the pipeline behind it,
:mod:`.app` the FastAPI app and :mod:`.server` uvicorn around it.
"""
