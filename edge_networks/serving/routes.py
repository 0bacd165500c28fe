"""MONAI Label's request handlers, run off the server's event loop and with their inputs checked first.

MONAI Label 0.8.5 declares its endpoints ``async def`` and does the work in them synchronously (an inference, a
download, an upload), so one request blocks the whole server: ``/info`` waits for every inference, and an
annotation tool that polls it sees a dead server. FastAPI runs a plain ``def`` endpoint in its thread pool instead.
:func:`run_endpoints_in_threads` swaps each such route of the running app for an equivalent ``def`` one (same path,
parameters, dependencies and documentation) that runs the original handler in a worker thread; the app then queues
requests per model (:class:`~edge_networks.serving.label_app.EdgeSegApp`), so concurrent inferences on one model
run one after another while ``/info`` and the datastore keep answering.

The ``/infer`` route's replacement also checks what the client sent before MONAI Label sees it
(:func:`check_infer_request`): a study id or an upload or a session (empty: 422), ``params`` that are a JSON
object (422); every replaced route checks its id parameters (:data:`ID_PARAMETERS`, 404 when ill-formed, see
:mod:`.ids`). An upload is saved by this module, so the app knows the
one server path this request may read (:func:`allowed_paths`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from fastapi.routing import APIRoute

from .ids import check_id

__all__ = ["THREADED_PREFIXES", "run_endpoints_in_threads", "allowed_paths", "check_infer_request"]

# the routes whose handlers do blocking work (inference, training requests, files, scoring, sessions)
THREADED_PREFIXES = ("/infer", "/batch", "/train", "/activelearning", "/scoring", "/datastore", "/session", "/model")

# query and path parameters of MONAI Label's handlers that name a datastore entry or a session, checked by
# ids.check_id before the handler runs (an empty one is left to the handler, which answers 404 or 422)
ID_PARAMETERS = {"image": "study", "label": "label", "id": "study", "tag": "label tag", "session_id": "session"}

_local = threading.local()


def allowed_paths() -> dict[str, str]:
    """Server paths the current request may read as its study (its upload or its session's image), each mapped to
    the name to show in messages. Empty outside a request handled by :func:`run_endpoints_in_threads`."""
    return getattr(_local, "allowed", {})


@contextlib.contextmanager
def _allowing(paths: dict[str, str]) -> Iterator[None]:
    _local.allowed = paths
    try:
        yield
    finally:
        _local.allowed = {}


def check_infer_request(kwargs: dict[str, Any]) -> dict[str, str]:
    """Check ``/infer``'s arguments (``image``, ``session_id``, ``params``, ``file``) before the work starts; save an
    upload to a private temporary file and hand it on as the study. Returns the allowed paths (:func:`allowed_paths`).

    Raises:
        HTTPException: 422 no study given, or ``params`` not a JSON object.
    """
    image, session_id, upload = kwargs.get("image") or "", kwargs.get("session_id") or "", kwargs.get("file")
    params = kwargs.get("params")
    if isinstance(params, str) and params.strip():
        try:
            parsed = json.loads(params)
        except json.JSONDecodeError as e:
            raise HTTPException(status_code=422, detail=f"params is not JSON: {e.msg} at character {e.pos}") from None
        if not isinstance(parsed, dict):
            raise HTTPException(status_code=422, detail="params must be a JSON object")
    allowed: dict[str, str] = {}  # ids (image, session_id) were checked with the other id parameters
    if upload is not None:
        name = Path(upload.filename or "upload.nii.gz").name
        suffix = "".join(Path(name).suffixes) or ".nii.gz"
        folder = tempfile.mkdtemp(prefix="edge-seg-upload-")
        path = os.path.join(folder, f"upload{suffix}")
        with open(path, "wb") as out:
            shutil.copyfileobj(upload.file, out)
        allowed[path] = name
        kwargs["file"] = None
        kwargs["image"] = path
    elif not image and not session_id:
        raise HTTPException(status_code=422, detail="no study: pass ?image=<study id>, a file or a session_id")
    return allowed


def _threaded(original: Callable[..., Any], infer: bool) -> Callable[..., Any]:
    """A ``def`` endpoint with ``original``'s signature that runs ``original`` (a coroutine function) to completion
    in the worker thread FastAPI gives it."""

    def endpoint(*args: Any, **kwargs: Any) -> Any:
        for key, kind in ID_PARAMETERS.items():
            value = kwargs.get(key)
            if isinstance(value, str) and value:
                check_id(value, kind)
        allowed = check_infer_request(kwargs) if infer else {}
        try:
            with _allowing(allowed):
                return asyncio.run(original(*args, **kwargs))
        finally:
            for path in allowed:  # the uploads check_infer_request saved, each in its own folder
                shutil.rmtree(os.path.dirname(path), ignore_errors=True)

    # original's parameters, without functools.wraps's __wrapped__ (FastAPI follows it and would await the result)
    endpoint.__signature__ = inspect.signature(original)
    endpoint.__name__, endpoint.__doc__, endpoint.__module__ = original.__name__, original.__doc__, original.__module__
    return endpoint


def _routers(router: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """``router`` and every router included in it (FastAPI >= 0.160 keeps included routers as they are, behind
    ``_IncludedRouter`` entries; earlier versions copied their routes into the including router)."""
    seen = set() if seen is None else seen
    if id(router) in seen:
        return
    seen.add(id(router))
    yield router
    for route in router.routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routers(included, seen)


def run_endpoints_in_threads(app: Any, prefixes: tuple[str, ...] = THREADED_PREFIXES) -> list[str]:
    """Replace every ``async def`` route of ``app`` (a FastAPI application) and of the routers it includes whose path
    starts with one of ``prefixes`` by a ``def`` route that runs it in FastAPI's thread pool. Idempotent.

    Returns:
        The replaced routes, as ``"METHODS path"``.
    """
    replaced = []
    for router in _routers(app.router):
        changed = False
        for i, route in enumerate(router.routes):
            if not isinstance(route, APIRoute) or not inspect.iscoroutinefunction(route.endpoint):
                continue
            if not any(route.path.startswith(p) for p in prefixes):
                continue
            infer = route.path.startswith("/infer/") and route.endpoint.__name__ == "api_run_inference"
            router.routes[i] = APIRoute(
                route.path, _threaded(route.endpoint, infer), methods=route.methods, name=route.name,
                summary=route.summary, description=route.description, tags=route.tags, responses=route.responses,
                dependencies=route.dependencies, response_class=route.response_class,
                include_in_schema=route.include_in_schema, status_code=route.status_code)
            replaced.append(f"{','.join(sorted(route.methods))} {route.path}")
            changed = True
        if changed and hasattr(router, "_mark_routes_changed"):
            router._mark_routes_changed()  # FastAPI caches the effective routes of included routers per version
    return replaced
