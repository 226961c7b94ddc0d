"""The dashboard: a Streamlit app over the inference service's HTTP API, and nothing else.

It reads the clock, candles, the prediction log and the contest decisions from the API and asks
``/predict`` for each new sim hour as any client would, so it can be deployed apart from the backend.
``client`` speaks HTTP, ``views`` turns answers into figures and numbers (pure), ``app`` is the page.
"""

from btcmlops.dashboard.client import ServiceClient, ServiceError, ServiceUnavailableError

__all__ = ["ServiceClient", "ServiceError", "ServiceUnavailableError"]
