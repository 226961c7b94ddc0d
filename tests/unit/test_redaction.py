"""One redaction: no credentials in any text, and no address in what anyone may read.

The failures are real ones (a closed port, a name that does not resolve) raised by the drivers and
clients the product uses; nothing is mocked.
"""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from rich.console import Console

from btcmlops.redaction import (
    conceal_locations,
    describe_error,
    install_log_redaction,
    redact,
    redacted_stream,
)

PASSWORD = "pw-Zq7@x:y"
"""A password with the characters that end a naive pattern early: '@' and ':'."""
USER = "alice-operator"


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        f"http://{USER}:{PASSWORD}@mlflow:5000/api/2.0/mlflow/runs/get",
        f"https://{USER}:{PASSWORD}@mlflow.example.org",
        f"mysql+pymysql://{USER}:{PASSWORD}@db:3306/btcmlops?charset=utf8mb4",
        f"postgresql://{USER}:{PASSWORD}@db/btcmlops",
        f"postgresql+psycopg://{USER}@db/btcmlops?password={PASSWORD.replace('@', '%40')}",
        f"s3://{USER}:{PASSWORD}@bucket/models",
    ],
)
def test_redact_takes_user_and_password_out_of_every_scheme_and_keeps_the_rest(url: str) -> None:
    shown = redact(f"API request to {url} failed")
    assert USER not in shown
    assert "pw-Zq7" not in shown
    assert "***" in shown
    assert shown.startswith("API request to ")
    assert shown.endswith(" failed")
    assert url.split("://")[0] + "://" in shown  # what it is stays readable


def test_redact_leaves_text_without_credentials_as_it_is() -> None:
    for text in ("now serving btc v3", "http://mlflow:5000/#/models", "sqlite:////tmp/prices.db", "a=b"):
        assert redact(text) == text


def test_a_dsn_password_pair_is_redacted() -> None:
    shown = redact(f"host=db user={USER} password='{PASSWORD}' dbname=btc")
    assert "pw-Zq7" not in shown
    assert "dbname=btc" in shown


def test_concealed_text_says_what_failed_but_not_where() -> None:
    text = (
        "API request to http://u:p@10.1.2.3:5000/api/2.0/x failed with exception "
        "HTTPConnectionPool(host='mlflow.internal', port=5000): Max retries exceeded; "
        "(2003, \"Can't connect to MySQL server on 'db.internal' (timed out)\"); "
        "Access denied for user 'btc'@'172.18.0.5'; [fe80::1]:8080"
    )
    shown = conceal_locations(text)
    for where in ("10.1.2.3", "mlflow.internal", "5000", "db.internal", "172.18.0.5", "fe80", "u:p"):
        assert where not in shown, where
    assert "API request to <http URL> failed" in shown
    assert "Max retries exceeded" in shown
    assert "timed out" in shown


def test_describe_error_says_a_refused_store_by_its_cause_without_credentials_or_address(
    closed_port: int,
) -> None:
    engine = sqlalchemy.create_engine(f"mysql+pymysql://{USER}:pw@127.0.0.1:{closed_port}/btc")
    with pytest.raises(sqlalchemy.exc.OperationalError) as failed, engine.connect():
        pass
    engine.dispose()
    shown = describe_error(failed.value)
    assert shown == "ConnectionRefusedError: connection refused"


def test_describe_error_says_an_unreachable_mlflow_by_its_cause(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # as the services set it: ours retry
    client = MlflowClient(tracking_uri=f"http://{USER}:{PASSWORD}@127.0.0.1:{closed_port}")
    with pytest.raises(MlflowException) as failed:  # MLflow wraps requests' error in its own
        client.get_registered_model("btc")
    assert PASSWORD in str(failed.value) or USER in str(failed.value)  # what MLflow itself says
    shown = describe_error(failed.value)
    assert shown == "ConnectionRefusedError: connection refused"


def test_describe_error_says_a_name_that_does_not_resolve() -> None:
    with pytest.raises(requests.ConnectionError) as failed:
        requests.get(f"http://{USER}:pw@no-such-host.invalid/", timeout=5)
    assert describe_error(failed.value) == "gaierror: host name not resolved"


def test_describe_error_of_anything_else_conceals_its_locations() -> None:
    error = RuntimeError(f"version 2 does not load from http://{USER}:{PASSWORD}@mlflow:5000/artifacts")
    shown = describe_error(error)
    assert shown == "RuntimeError: version 2 does not load from <http URL>"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Records of a fresh logger, formatted with a traceback, into a string; the record factory restored."""
    factory = logging.getLogRecordFactory()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("btcmlops.test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logging.setLogRecordFactory(factory)


def test_installed_redaction_covers_every_log_line_and_traceback(log_lines: io.StringIO) -> None:
    install_log_redaction()
    logger = logging.getLogger("btcmlops.test.redaction")
    url = f"http://{USER}:{PASSWORD}@mlflow:5000"
    logger.warning("opening the registry at %s failed", url)
    try:
        raise ConnectionError(f"API request to {url}/api failed")
    except ConnectionError:
        logger.exception("retrying")
    logger.info("nothing secret: %d versions", 3)
    text = log_lines.getvalue()
    assert USER not in text
    assert "pw-Zq7" not in text
    assert "opening the registry at http://***@mlflow:5000 failed" in text
    assert "ConnectionError: API request to http://***@mlflow:5000/api failed" in text
    assert "Traceback" in text  # the traceback is still there, redacted
    assert "nothing secret: 3 versions" in text


def test_a_console_on_the_redacted_stream_prints_no_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    console = Console(file=redacted_stream(), width=200)
    console.print(f"cannot reach mysql+pymysql://{USER}:{PASSWORD}@db/btc", markup=False)
    errors = Console(file=redacted_stream(stderr=True), width=200)
    errors.print(f"refused: https://{USER}:{PASSWORD}@mlflow/", markup=False)
    captured = capsys.readouterr()
    assert "cannot reach mysql+pymysql://***@db/btc" in captured.out
    assert "refused: https://***@mlflow/" in captured.err
    assert "pw-Zq7" not in captured.out + captured.err
