"""The Streamlit page (``btcmlops dashboard`` runs it): a thin layer over ``client`` and ``views``.

The live part is one ``st.fragment`` that reruns every ``refresh_s`` seconds, so only it redraws (no
full-page flicker); the clock controls sit in the sidebar and rerun the page when used.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from btcmlops.dashboard.client import ServiceClient, ServiceError, ServiceUnavailableError
from btcmlops.dashboard.views import (
    LiveError,
    LiveInterval,
    alert_lines,
    champion_timeline,
    clock_banners,
    contest_scores,
    daily_figure,
    decision_table,
    drift_figure,
    forecast_figure,
    hours_to_ask,
    live_contest_headline,
    live_contest_table,
    live_error,
    live_interval,
    monitoring_table,
    newest_asked,
    run_interval,
    run_scores,
    shown_state,
    timeline_figure,
    version_scores,
    why_summary,
)
from btcmlops.mlflow_links import model_version_url, registered_model_url
from btcmlops.redaction import install_log_redaction
from btcmlops.settings import Settings


@st.cache_resource
def _settings() -> Settings:
    install_log_redaction()  # once per dashboard process, as every entry point does
    return Settings()


@st.cache_resource
def _client(base_url: str, timeout_s: float) -> ServiceClient:
    return ServiceClient.connect(base_url, timeout_s=timeout_s)


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _clock_controls(client: ServiceClient, default_speed: float, default_start: date) -> None:
    st.sidebar.header("Sim clock")
    key = st.sidebar.text_input(
        "Control key", type="password", help="BTCMLOPS_SERVE__CONTROL_KEY of the service"
    )
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
    with st.sidebar.expander("Reset the clock"):
        start_day = st.date_input("Start (UTC)", value=default_start, key="reset_start")
        st.caption(
            "Sim time starts again from this day and holds for that month's contest. Prices, contests "
            "and champions already recorded stay: they show as before the reset."
        )
        if st.button("Reset", width="stretch"):
            action = ("reset", float(speed))
    if action is None:
        return
    if not key:
        st.sidebar.warning("Enter the control key to change the clock.")
        return
    start = datetime.combine(start_day, time(), tzinfo=UTC) if action[0] == "reset" else None
    try:
        clock = client.change_clock(action[0], key, speed=action[1], start=start)
    except (ServiceError, ServiceUnavailableError) as error:
        st.sidebar.error(f"Clock not changed: {error}")
        return
    state = "paused" if clock["paused"] else "running"
    verb = f"reset to {pd.Timestamp(clock['sim_now']):%Y-%m-%d %H:%M}, " if action[0] == "reset" else ""
    st.sidebar.success(f"Clock {verb}{state} at {clock['speed']:g} sim h/s")


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
        decisions = client.decisions()
        history = client.history()
        finished = clock is not None and clock.get("state") == "finished"
        scores = _run_scores(client, history, closed) if finished else None
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
    reached = pd.Timestamp(model["latest_candle"]).to_pydatetime() if model["latest_candle"] else None
    if clock is not None:
        for banner in clock_banners(clock, reached, window["trained_through"] if window else None):
            getattr(st, banner.kind)(banner.text)
    top = st.columns([1, 2, 1, 1, 1, 1])
    top[0].metric("Champion", "none yet" if version is None else f"v{version}")
    if clock is not None:
        top[1].metric("Sim time", f"{pd.Timestamp(clock['sim_now']):%Y-%m-%d %H:%M}")
        top[2].metric(
            "Clock", shown_state(clock), help="running, paused, holding (for a contest) or finished"
        )
        top[3].metric("Set speed", f"{clock['speed']:g} h/s", help="Sim hours per real second, as set.")
        real = clock.get("achieved_speed")
        top[4].metric(
            "Real speed",
            "measuring" if real is None else f"{real:.1f} h/s",
            help="Sim hours per real second the clock really ran over the last 10 s (the API's "
            "achieved_speed): less than the set speed while the clock waits for a contest or a forecast.",
        )
    promoted = sum(item["promoted"] for item in decisions)
    top[5].metric("Contests", len(decisions), f"{promoted} promoted", delta_color="off")
    if window:
        st.caption(f"Champion trained through {window['trained_through']} ({window['train_rows']:,} hours).")

    figure = forecast_figure(candles, predictions, shadow)
    st.session_state["last_figure"] = figure
    st.session_state["last_sim_time"] = f"{closed:%Y-%m-%d %H:00}"
    st.plotly_chart(figure, key="forecasts", width="stretch")

    if scores is not None:
        _scores_tiles(scores[0], "the whole run", "served")
        _interval_tiles([(scores[1], "the whole run")], "served")
    elif version is not None:
        errors = st.columns(4)
        intervals = []
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
            intervals.append(
                (live_interval(predictions, candles, version, closed, timedelta(hours=hours)), label)
            )
        _interval_tiles(intervals, f"v{version}")
    per_version = version_scores(predictions, candles, closed)
    if not per_version.empty:
        st.caption(
            "Each version's live record over the hours shown: MAE and its interval against naive's "
            "(naive's interval: the trailing 30 days' hourly moves). Coverage is the share of live hours "
            "whose close fell inside the interval; the interval score is its width plus 2 / (1 - level) "
            "times any miss (USDT, lower is better); skill is 1 - score / naive's."
        )
        st.dataframe(per_version, hide_index=True, width="stretch", key="per-version")
    _champion_timeline(history, clock, reached, settings)
    _contests(decisions, settings)


def _run_scores(
    client: ServiceClient, history: list[dict[str, Any]], closed: datetime
) -> tuple[LiveError, LiveInterval]:
    """The finished run's live forecasts and intervals against naive's, read once (a finished run does
    not change)."""
    key = f"run_scores:{closed:%Y-%m-%dT%H}"
    if key not in st.session_state:
        times = [pd.Timestamp(item["sim_time"]) for item in history if item.get("sim_time")]
        first = min(times).to_pydatetime() if times else closed - timedelta(days=366)
        predictions = client.predictions(first, closed)
        candles = client.candles(first, closed)
        st.session_state[key] = (run_scores(predictions, candles), run_interval(predictions, candles))
    scores: tuple[LiveError, LiveInterval] = st.session_state[key]
    return scores


def _interval_tiles(results: list[tuple[LiveInterval, str]], who: str) -> None:
    """Coverage and interval score against naive's, two tiles for each span."""
    tiles = st.columns(4)
    for index, (result, label) in enumerate(results):
        level = "" if result.level is None else f" (level {result.level:.0%})"
        tiles[2 * index].metric(
            f"{who} coverage, {label}",
            _share(result.coverage),
            None if result.naive_coverage is None else f"naive {result.naive_coverage:.1%}",
            delta_color="off",
            help=f"Share of the {result.hours:,} live hours whose close fell inside the interval{level}: "
            "near the level is calibrated. Naive's interval on the same hours beside it.",
        )
        skill = None if result.skill is None else f"{result.skill:+.2%} skill vs naive"
        tiles[2 * index + 1].metric(
            f"{who} interval score, {label}",
            _money(result.interval_score),
            skill,
            help="Width plus 2 / (1 - level) times any miss, mean over the live hours (USDT, lower is "
            f"better); naive's on the same hours: {_money(result.naive_interval_score)}. Skill is "
            "1 - score / naive's.",
        )


def _scores_tiles(result: LiveError, label: str, who: str) -> None:
    tiles = st.columns(4)
    tiles[0].metric(f"{who} live MAE, {label} ({result.hours:,} h)", _money(result.model_mae))
    tiles[1].metric(f"naive MAE, {label}", _money(result.naive_mae))
    tiles[2].metric(
        "skill vs naive",
        "n/a" if result.skill is None else f"{result.skill:+.2%}",
        help="1 - MAE / naive MAE over every hour a champion forecast live: above 0 beats "
        "next close = last close.",
    )


def _champion_timeline(
    history: list[dict[str, Any]], clock: dict[str, Any] | None, reached: datetime | None, settings: Settings
) -> None:
    """The whole run's champions in sim time, each linked to its MLflow version page."""
    st.subheader("Champion timeline")
    sim_now = pd.Timestamp(clock["sim_now"]).to_pydatetime() if clock else None
    timeline = champion_timeline(history, sim_now, reached)
    if timeline.empty:
        st.caption("No champion yet: v1 is trained once sim time passes its training year.")
        return
    st.plotly_chart(timeline_figure(timeline), key="timeline", width="stretch")
    links = []
    for _, span in timeline.iterrows():
        url = model_version_url(
            settings.dashboard.mlflow_ui_url, settings.mlflow.registered_model, int(span["version"][1:])
        )
        links.append(f"[{span['version']}]({url}) from {span['from']:%Y-%m-%d %H:00} ({span['source']})")
    st.markdown(" → ".join(links))


def _contests(decisions: list[dict[str, Any]], settings: Settings) -> None:
    """Every contest with its links, and why a chosen one went as it did (daily MAEs, full reason)."""
    st.subheader("Contest history")
    if not decisions:
        st.caption("No contest yet: the first one closes the month after the first champion.")
        return
    table = decision_table(decisions, settings.dashboard.mlflow_ui_url, settings.mlflow.registered_model)
    version_link = st.column_config.LinkColumn(display_text=r"versions/(\d+)")
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "champion": version_link,
            "challenger": version_link,
            "run": st.column_config.LinkColumn(display_text="contest run"),
        },
    )
    months = list(table["shadow month"])  # newest first
    if st.session_state.get("why_newest") != months[0]:
        # A new contest closed: show it, unless the viewer chose an older one than the newest shown.
        if st.session_state.get("why_month") in (None, st.session_state.get("why_newest")):
            st.session_state["why_month"] = months[0]
        st.session_state["why_newest"] = months[0]
    month = st.selectbox("Why did the challenger win or lose?", months, key="why_month")
    decision = next(item for item in decisions if f"{pd.Timestamp(item['eval_start']):%Y-%m}" == month)
    st.markdown(f"**{month}: challenger {decision['outcome']}.** {decision['reason']}")
    st.dataframe(contest_scores(decision), hide_index=True, key="why-scores")
    st.markdown(why_summary(decision))
    row = table.loc[table["shadow month"] == month].iloc[0]
    links = [
        f"[champion v{decision['champion_version']}]({row['champion']})",
        f"[challenger v{decision['challenger_version']}]({row['challenger']})",
    ]
    if row["run"]:
        links.append(f"[contest run {month}]({row['run']})")
    st.markdown("In MLflow: " + " · ".join(links))
    figure = daily_figure(decision)
    if figure is None:
        st.caption("This contest was decided before daily MAEs were recorded.")
    else:
        st.plotly_chart(figure, key="why", width="stretch")


def _monitoring(client: ServiceClient, settings: Settings) -> None:
    """The monitoring view: what Prometheus alerts on, and the live figures behind it."""
    try:
        scores = client.live_scores()
    except (ServiceUnavailableError, ServiceError) as error:
        st.error(
            f"The inference service at {client.base_url} is not answering: {error}. "
            f"This page retries every {settings.dashboard.refresh_s:g} s."
        )
        return
    st.subheader("Alerts")
    try:
        alerts = client.alerts()
    except (ServiceUnavailableError, ServiceError) as error:
        st.warning(f"Alerts unknown: {error}")
    else:
        if not alerts["configured"]:
            st.info(
                "No Prometheus is configured (BTCMLOPS_SERVE__PROMETHEUS_URL), so no alert can be shown: "
                "the rules in deploy/prometheus/rules are evaluated by Prometheus only."
            )
        else:
            banners = alert_lines(alerts)
            for banner in banners:
                getattr(st, banner.kind)(banner.text)
            if not banners:
                st.success(f"No alert pending or firing in {alerts['source']}.")

    end = scores["window_end"]
    st.subheader("Live record, last 7 sim days")
    level = scores["interval_level"]
    ending = f"Window ending {pd.Timestamp(end):%Y-%m-%d %H:%M} UTC (sim time). " if end else ""
    st.caption(
        f"{ending}Each forecast counts once its hour closed, if it was made in time and after its version's "
        "training window. Skill is 1 - score / naive's on the same hours (above 0: better than naive); "
        f"coverage should stay near the interval level{'' if level is None else f' ({level:.0%})'}."
    )
    table = monitoring_table(scores["scores"])
    if table.empty:
        st.caption("No live forecast has been scored in the window yet.")
    else:
        st.dataframe(table, hide_index=True, width="stretch", key="monitoring-scores")

    st.subheader("The contest so far")
    try:
        standing = client.contest_live()
    except (ServiceUnavailableError, ServiceError) as error:
        st.warning(f"The live contest is unknown: {error}")
    else:
        if standing is None:
            st.caption("No shadow month in progress (or the service runs without the challenger in shadow).")
        else:
            st.markdown(live_contest_headline(standing))
            if standing["note"]:
                st.caption(standing["note"])
            if standing["challenger_error"]:
                st.warning(f"The challenger cannot forecast: {standing['challenger_error']}")
            if standing["champion_mae"] is not None:
                st.dataframe(live_contest_table(standing), hide_index=True, key="contest-live")
            if standing["reason"]:
                st.caption(f"The contest's reason, were the month to end now: {standing['reason']}")

    st.subheader("Drift of the champion's inputs")
    try:
        drift = client.drift()
    except (ServiceUnavailableError, ServiceError) as error:
        st.warning(f"Drift unknown: {error}")
        return
    figure = drift_figure(drift)
    if figure is None:
        st.caption("No drift yet: the last 7 sim days need at least 24 hours, and a champion must serve.")
        return
    current, reference = drift["current"], drift["reference"]
    st.caption(
        f"Population Stability Index of each feature of v{drift['model_version']}: the last 7 sim days "
        f"({current['hours']} hours to {pd.Timestamp(current['end']):%Y-%m-%d %H:%M}) against its training "
        f"window ({reference['hours']:,} hours, {pd.Timestamp(reference['start']):%Y-%m-%d} to "
        f"{pd.Timestamp(reference['end']):%Y-%m-%d}). Below {drift['moderate_threshold']:g} stable, above "
        f"{drift['threshold']:g} drifted (the BtcmlopsFeatureDrift alert's bound)."
    )
    st.plotly_chart(figure, key="drift", width="stretch")


def _live_page() -> None:
    st.title("BTC next-hour forecasts, live")
    settings = _settings()
    client = _client(settings.dashboard.api_url, settings.dashboard.request_timeout_s)
    st.fragment(run_every=settings.dashboard.refresh_s)(_live)(client, settings)


def _monitoring_page() -> None:
    st.title("Monitoring: is the champion still good, and is the pipeline moving?")
    settings = _settings()
    client = _client(settings.dashboard.api_url, settings.dashboard.request_timeout_s)
    st.fragment(run_every=settings.dashboard.refresh_s)(_monitoring)(client, settings)


def main() -> None:
    settings = _settings()
    st.set_page_config(page_title="btcmlops live", layout="wide")
    client = _client(settings.dashboard.api_url, settings.dashboard.request_timeout_s)
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
    _clock_controls(
        client, float(current["speed"]) if current else settings.clock.speed, settings.clock.start.date()
    )
    st.navigation(
        [
            st.Page(_live_page, title="Live", url_path="live", default=True),
            st.Page(_monitoring_page, title="Monitoring", url_path="monitoring"),
        ]
    ).run()


if __name__ == "__main__":  # `streamlit run` executes this file as __main__
    main()
