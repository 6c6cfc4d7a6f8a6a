"""Token redaction, shared by the server, the client and the app's log file."""

import logging
import sys

from mfu_tui.redaction import RedactTokens, redact


def test_redaction_covers_jwts_bearer_values_and_query_tokens():
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    line = f"GET /ws?chat=c1&token=abc.def HTTP/1.1 Authorization: Bearer opaque-value {jwt_like}"
    cleaned = redact(line)
    assert "abc.def" not in cleaned and "opaque-value" not in cleaned and jwt_like not in cleaned
    assert "chat=c1" in cleaned


def test_the_filter_rewrites_arguments_and_tracebacks():
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    try:
        raise ValueError(f"bad {token}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "header %s", (f"Bearer {token}",), sys.exc_info())
    assert RedactTokens().filter(record)
    assert token not in record.getMessage() and token not in (record.exc_text or "")
    assert "[redacted]" in record.getMessage()
