"""The service's routes, one router per concern; ``ROUTERS`` in the order the API documents them."""

from btcmlops.serving.routes import clock, contest, drift, forecasts, model, monitoring, reads, service

ROUTERS = (
    reads.router,
    forecasts.router,
    clock.router,
    model.router,
    service.router,
    contest.router,
    drift.router,
    monitoring.router,
)

__all__ = ["ROUTERS"]
