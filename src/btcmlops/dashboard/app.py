"""The Streamlit page (``btcmlops dashboard`` runs it): a thin layer over ``client`` and ``views``.

The live part is one ``st.fragment`` that reruns every ``refresh_s`` seconds, so only it redraws (no
full-page flicker); the clock controls sit in the sidebar and rerun the page when used.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from btcmlops.dashboard.client import ServiceClient, ServiceError, ServiceUnavailableError
from btcmlops.dashboard.views import (
    decision_table,
    forecast_figure,
    hours_to_ask,
    live_error,
    newest_asked,
)
from btcmlops.registry.presentation import registered_model_url
from btcmlops.settings import Settings


@st.cache_resource
def _settings() -> Settings:
    return Settings()


@st.cache_resource
def _client(base_url: str, timeout_s: float) -> ServiceClient:
    return ServiceClient.connect(base_url, timeout_s=timeout_s)


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _clock_state(clock: dict[str, Any]) -> None:
    """Say when the clock holds for the contest, and when the replay is over."""
    if clock.get("state") == "holding":
        st.info(
            f"The clock holds at {pd.Timestamp(clock['hold_at']):%Y-%m-%d %H:%M} UTC: {clock['holding_for']}."
        )
    elif clock.get("state") == "finished":
        st.success(
            f"The replay is finished: the data ends at {pd.Timestamp(clock['end_at']):%Y-%m-%d %H:%M} UTC."
        )


def _clock_controls(client: ServiceClient, default_speed: float) -> None:
    st.sidebar.header("Sim clock")
    key = st.sidebar.text_input("API key", type="password", help="BTCMLOPS_CLOCK__API_KEY of the service")
    pause, resume = st.sidebar.columns(2)
    speed = st.sidebar.number_input(
        "Speed (sim hours per second)", min_value=0.1, max_value=10_000.0, value=default_speed
    )
    action: tuple[str, float | None] | None = None
    if pause.button("Pause", width="stretch"):
        action = ("pause", None)
    if resume.button("Resume", width="stretch"):
        action = ("resume", None)
    if st.sidebar.button("Set speed", width="stretch"):
        action = ("speed", float(speed))
    if action is None:
        return
    if not key:
        st.sidebar.warning("Enter the API key to change the clock.")
        return
    try:
        clock = client.change_clock(action[0], key, speed=action[1])
    except (ServiceError, ServiceUnavailableError) as error:
        st.sidebar.error(f"Clock not changed: {error}")
        return
    state = "paused" if clock["paused"] else "running"
    st.sidebar.success(f"Clock {state} at {clock['speed']:g} sim h/s")


def _live(client: ServiceClient, settings: Settings) -> None:
    """Everything that follows sim time; the caller wraps it in a fragment that reruns on its own."""
    hours_shown = settings.dashboard.hours_shown
    try:
        clock = client.clock()
        model = client.model()
        if clock is not None:
            closed = pd.Timestamp(clock["last_closed_hour"]).to_pydatetime()
            forecastable = pd.Timestamp(clock.get("last_forecastable_hour") or closed).to_pydatetime()
        elif model["latest_candle"] is not None:  # a replay served without a clock: its last hour
            closed = forecastable = pd.Timestamp(model["latest_candle"]).to_pydatetime()
        else:
            st.info("The price store has no candles yet: waiting for the feed.")
            return
        start = closed - timedelta(hours=hours_shown - 1)
        predictions = client.predictions(start + timedelta(hours=1), closed + timedelta(hours=1))
        window = model["training_window"]
        if model["version"] is not None:
            asked = hours_to_ask(
                forecastable,  # while the clock holds, the month's last hour waits for its champion
                newest_asked(predictions, st.session_state.get("newest_asked")),
                pd.Timestamp(window["train_end"]).to_pydatetime() if window else None,
                hours_shown,
            )
            if asked:
                fresh = client.predict_hours(asked)
                st.session_state["newest_asked"] = asked[-1]
                predictions = pd.concat([predictions, fresh], ignore_index=True)
        candles = client.candles(start, closed)
        if clock is not None:
            _clock_state(clock)
        decisions = client.decisions()
        shadow = client.shadow(start, closed) if st.session_state.get("show_shadow") else None
    except (ServiceUnavailableError, ServiceError) as error:
        st.error(
            f"The inference service at {client.base_url} is not answering: {error}. "
            f"This page retries every {settings.dashboard.refresh_s:g} s."
        )
        last = st.session_state.get("last_figure")
        if last is not None:  # what was known stays on screen, under the banner
            st.caption(f"The chart as it was at sim time {st.session_state.get('last_sim_time', '?')}:")
            st.plotly_chart(last, key="forecasts-before-the-outage", width="stretch")
        return

    version = model["version"]
    top = st.columns([1, 2, 1, 1])
    top[0].metric("Champion", "none yet" if version is None else f"v{version}")
    if clock is not None:
        top[1].metric("Sim time", f"{pd.Timestamp(clock['sim_now']):%Y-%m-%d %H:%M}")
        state = clock.get("state", "paused" if clock["paused"] else "running")
        top[2].metric("Speed", f"{clock['speed']:g} h/s" + ("" if state == "running" else f" ({state})"))
    promoted = sum(item["promoted"] for item in decisions)
    top[3].metric("Contests", len(decisions), f"{promoted} promoted", delta_color="off")
    if window:
        st.caption(f"Champion trained through {window['trained_through']} ({window['train_rows']:,} hours).")

    figure = forecast_figure(candles, predictions, shadow)
    st.session_state["last_figure"] = figure
    st.session_state["last_sim_time"] = f"{closed:%Y-%m-%d %H:00}"
    st.plotly_chart(figure, key="forecasts", width="stretch")

    if version is not None:
        errors = st.columns(4)
        for index, (label, hours) in enumerate((("last day", 24), ("last week", 168))):
            result = live_error(predictions, candles, version, closed, timedelta(hours=hours))
            skill = "" if result.skill is None else f"{result.skill:+.2%} skill vs naive"
            errors[2 * index].metric(
                f"v{version} live MAE, {label} ({result.hours} h)",
                _money(result.model_mae),
                skill or None,
                help="Skill is 1 - MAE / naive MAE: above 0 when the champion beats next close = last close.",
            )
            errors[2 * index + 1].metric(f"naive MAE, {label}", _money(result.naive_mae))
    st.subheader("Contest history")
    if decisions:
        st.dataframe(decision_table(decisions), hide_index=True, width="stretch")
    else:
        st.caption("No contest yet: the first one closes the month after the first champion.")


def main() -> None:
    settings = _settings()
    st.set_page_config(page_title="btcmlops live", layout="wide")
    client = _client(settings.dashboard.api_url, settings.dashboard.request_timeout_s)
    st.title("BTC next-hour forecasts, live")
    st.sidebar.link_button(
        "Open the model in MLflow",
        registered_model_url(settings.dashboard.mlflow_ui_url, settings.mlflow.registered_model),
        width="stretch",
    )
    st.sidebar.checkbox("Show the challenger's shadow forecasts", key="show_shadow")
    try:  # the speed box starts at the clock's own speed, not the configured one
        current = client.clock()
    except (ServiceError, ServiceUnavailableError):
        current = None
    _clock_controls(client, float(current["speed"]) if current else settings.clock.speed)
    st.fragment(run_every=settings.dashboard.refresh_s)(_live)(client, settings)


if __name__ == "__main__":  # `streamlit run` executes this file as __main__
    main()
