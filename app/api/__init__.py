"""The versioned JSON API: one router per file, gathered under /api/v1."""

from fastapi import APIRouter

from app.api import (
    estimate,
    forecast,
    horizon,
    inspect,
    meta,
    models,
    series,
    session,
    text,
    trace,
    training,
)

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(meta.router)
api_router.include_router(models.router)
api_router.include_router(trace.router)
api_router.include_router(session.router)
api_router.include_router(training.router)
api_router.include_router(estimate.router)
api_router.include_router(forecast.router)
api_router.include_router(series.router)
api_router.include_router(text.router)
api_router.include_router(inspect.router)
api_router.include_router(horizon.router)

__all__ = ["api_router"]
