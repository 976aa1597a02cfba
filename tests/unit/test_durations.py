import pytest

from ecsjob_operator.api.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15),
        ("30s", 30),
        ("45m", 2700),
        ("1h", 3600),
        ("30m", 1800),
        ("2h30m", 9000),
        ("2h15m30s", 8130),
        ("3600s", 3600),
        ("1h0m1s", 3601),
        ("90m", 5400),
        ("1m30s", 90),
    ],
)
def test_valid_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad",
    ["1 hour", "-5s", "0s", "10", "", "1d", "1.5h", "5 s", "s", "1s1h", "1h1h", "PT1H", " 1h", "1H", "0h0m0s"],
)
def test_invalid_durations_quote_the_value_and_show_an_example(bad: str) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(bad)
    assert f'"{bad}"' in str(err.value)
    assert '"2h15m30s"' in str(err.value)


@pytest.mark.parametrize("bad", [10, 3600, None, 1.5])
def test_bare_numbers_are_rejected(bad: object) -> None:
    with pytest.raises(DurationError, match="not a duration string"):
        parse_duration(bad)


@pytest.mark.parametrize(("seconds", "text"), [(30, "30s"), (3600, "1h"), (8130, "2h15m30s"), (5400, "1h30m")])
def test_format_round_trips(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(format_duration(seconds)) == seconds
