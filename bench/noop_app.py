"""The ceiling for bench/serve.py: a FastAPI endpoint that does nothing but answer."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()
ANSWER = {
    "timestamp": "2024-03-05T14:00:00Z",
    "target_time": "2024-03-05T15:00:00Z",
    "predicted_close": 68637.46750324543,
    "last_close": 68710.41,
    "model": {"name": "btc-next-hour-close", "version": 12, "run_id": "ac85c8281f8640cdbebc25d3dfd02e70"},
}


@app.post("/predict")
async def predict() -> dict[str, object]:
    return ANSWER
