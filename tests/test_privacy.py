"""bot.privacy: personal data never reaches the database or the logs."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.privacy import RedactingFilter, install_log_redaction, pseudonym, scrub

TOKEN = "1234567890:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"

# ---------------------------------------------------------------- scrub: examples


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # phones, Kazakh and Russian habits
        ("+7 701 123 45 67", "[phone]"),
        ("+7 (701) 123-45-67", "[phone]"),
        ("+7(701)1234567", "[phone]"),
        ("+77011234567", "[phone]"),
        ("8(701)1234567", "[phone]"),
        ("8 (701) 123 45 67", "[phone]"),
        ("8-701-123-45-67", "[phone]"),
        ("87011234567", "[phone]"),
        ("7011234567", "[phone]"),
        ("701-123-45-67", "[phone]"),
        ("701.123.45.67", "[phone]"),
        ("8 (7172) 12-34-56", "[phone]"),
        ("8\u00a0701\u00a0123\u00a045\u00a067", "[phone]"),
        ("+7 701 123–45–67", "[phone]"),
        ("call 123-45-67 now", "call [phone] now"),
        # phones from elsewhere: Afghanistan, Uzbekistan, Ukraine, the US
        ("+93 70 123 4567", "[phone]"),
        ("+998 90 123 45 67", "[phone]"),
        ("+380 44 123 4567", "[phone]"),
        ("+1 212 555 0100", "[phone]"),
        ("+۹۳ ۷۰ ۱۲۳ ۴۵۶۷", "[phone]"),  # Persian digits, as typed on Afghan phones
        ("۰۷۰ ۱۲۳ ۴۵۶۷", "[phone]"),
        ("٨٧٠١١٢٣٤٥٦٧", "[doc]"),  # Arabic-Indic digits: tagged, if not as a phone
        # phones in sentences, glued to words and punctuation
        ("мой номер 87011234567, звоните", "мой номер [phone], звоните"),
        ("тел87011234567", "тел[phone]"),
        ("тел.:+7 701 123 45 67.", "тел.:[phone]."),
        ("(+7 701 123 45 67)", "([phone])"),
        ("2024 87011234567", "2024 [phone]"),
        # e-mails
        ("ivan.petrov@mail.ru", "[email]"),
        ("write to A.Karimi+help@gmail.com.", "write to [email]."),
        ("почта: айгерим@почта.рф", "почта: [email]"),
        # IIN: exactly twelve digits
        ("ИИН 900101300123", "ИИН [iin]"),
        ("iin:900101300123.", "iin:[iin]."),
        # document numbers
        ("паспорт N12345678", "паспорт [doc]"),
        ("АВ1234567", "[doc]"),
        ("удостоверение 043456789", "удостоверение [doc]"),
        ("card 12345678", "card [doc]"),
        ("id 98765432101", "id [doc]"),
        ("4400 4301 2345 6789", "[doc]"),  # a bank card
        # Telegram
        ("@ivan_petrov", "[user]"),
        ("ask @Aigerim_K please", "ask [user] please"),
        ("https://t.me/ivan_petrov", "[link]"),
        ("see t.me/joinchat/AbCdEf.", "see [link]."),
        ("telegram.me/somebody", "[link]"),
        (TOKEN, "[token]"),
        (f"https://api.telegram.org/bot{TOKEN}/getMe", "https://api.telegram.org/bot[token]/getMe"),
        # mixed
        ("87011234567@user", "[phone][user]"),
        ("x@y.kz, +7 701 123 45 67, @zz_top", "[email], [phone], [user]"),
    ],
)
def test_scrub_replaces(raw: str, expected: str) -> None:
    assert scrub(raw) == expected


@pytest.mark.parametrize(
    "kept",
    [
        "В 1990 году я приехал, в 2024 подал документы",
        "жду 3 дня, уже 90 days",
        "12.05.2024",
        "приём 12.05.2024 и 10.06.2024",
        "2024-05-12",
        "12-05-2024",
        "с 1990-2024",
        "1990 2000 2010",
        "штраф 1 500 000 тенге или 15 000",
        "10:00-18:00, пн-пт",
        "закон № 1234",
        "статья 49, пункт 3.1.2",
        "192.168.1.1",
        "1 2 3 4 5 6 7 8 9 10",
        "email@ без домена",
        "@ab",
        "version 3.11.7",
        "",
    ],
)
def test_scrub_keeps(kept: str) -> None:
    assert scrub(kept) == kept


def test_scrub_keeps_the_sentence_around_the_data() -> None:
    text = "Здравствуйте! Меня зовут Ахмад, мой телефон +93 70 123 4567, паспорт P01234567, приехал 12.05.2024."
    assert scrub(text) == "Здравствуйте! Меня зовут Ахмад, мой телефон [phone], паспорт [doc], приехал 12.05.2024."


@pytest.mark.parametrize(
    "evil",
    [
        "1" * 100_000,
        "1 " * 50_000,
        "(1)" * 33_000,
        "+1" * 50_000,
        "a." * 50_000,
        "@" * 100_000,
        "a@" * 50_000,
        "t.me/" * 20_000,
        "AB1" * 33_000,
        "1234567:" * 12_000,
        "12.05." * 16_000,
        "x" * 100_000,
    ],
)
def test_scrub_is_linear_on_hostile_input(evil: str) -> None:
    """A catastrophic regex would take minutes here; linear work takes well under a second."""
    start = time.perf_counter()
    scrub(evil)
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------- scrub: properties

SEPARATORS = st.sampled_from([" ", "-", "", ".", "\u00a0"])


@st.composite
def phones(draw: st.DrawFn) -> str:
    """Phone numbers written the ways people write them."""
    sep = draw(SEPARATORS)

    def d(n: int) -> str:
        return "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=n, max_size=n)))

    kind = draw(st.sampled_from(["kz_plus", "kz_8", "kz_bare", "kz_paren", "af", "intl"]))
    if kind == "kz_plus":
        return f"+7{sep or ' '}7{d(2)}{sep}{d(3)}{sep}{d(2)}{sep}{d(2)}"
    if kind == "kz_8":
        return f"8{sep}7{d(2)}{sep}{d(3)}{sep}{d(2)}{sep}{d(2)}"
    if kind == "kz_bare":
        return f"7{d(2)}{sep}{d(3)}{sep}{d(2)}{sep}{d(2)}"
    if kind == "kz_paren":
        return f"{draw(st.sampled_from(['8', '+7', '']))}{sep.strip('.')}(7{d(2)}){sep.strip('.')}{d(3)}{sep}{d(4)}"
    if kind == "af":
        return f"+93{sep}7{d(1)}{sep}{d(3)}{sep}{d(4)}"
    return f"+{draw(st.integers(1, 999))}{sep}{d(3)}{sep}{d(3)}{sep}{d(4)}"


iins = st.from_regex(r"\A[0-9]{12}\Z")
emails = st.emails()
# Surrounding text: anything at all, or text without digits (where digits of the secret must not
# reappear at all, not even re-spaced).
any_text = st.text(max_size=40)
wordy_text = st.text(st.characters(blacklist_categories=("Nd", "No", "Cs")), max_size=40)


@given(st.text(max_size=300))
def test_scrub_never_raises_and_is_idempotent(text: str) -> None:
    once = scrub(text)
    assert isinstance(once, str)
    assert scrub(once) == once


@given(st.text(st.sampled_from("0123456789 +-.()@:_aбN"), max_size=80))
def test_scrub_idempotent_on_digit_soup(text: str) -> None:
    once = scrub(text)
    assert scrub(once) == once


@given(any_text, st.one_of(phones(), iins, emails), any_text)
def test_secrets_never_survive_in_any_text(before: str, secret: str, after: str) -> None:
    out = scrub(f"{before} {secret} {after}")
    assert secret not in out


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


@given(wordy_text, st.one_of(phones(), iins), wordy_text)
def test_no_digits_of_a_number_survive(before: str, secret: str, after: str) -> None:
    out = scrub(f"{before} {secret} {after}")
    assert digits_of(secret)[-7:] not in digits_of(out)


@given(wordy_text, emails, wordy_text)
def test_no_email_survives(before: str, secret: str, after: str) -> None:
    out = scrub(f"{before} {secret} {after}")
    assert secret not in out
    assert secret.split("@")[1] not in out


# ---------------------------------------------------------------- pseudonym


def test_pseudonym_is_stable_keyed_and_short() -> None:
    a = pseudonym(123456789, b"key-one")
    assert a == pseudonym(123456789, b"key-one")
    assert re.fullmatch(r"[0-9a-f]{32}", a)
    assert a != pseudonym(123456789, b"key-two")
    assert a != pseudonym(123456780, b"key-one")
    assert "123456789" not in a


# ---------------------------------------------------------------- log redaction


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with one stream handler carrying the filter, as install_log_redaction sets it up."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter([TOKEN]))
    logger = logging.getLogger("komek.test.privacy")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def test_filter_removes_token_from_msg(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage")
    assert TOKEN not in stream.getvalue()
    assert "sendMessage" in stream.getvalue()


def test_filter_removes_token_from_args(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.warning("url=%s user=%s phone=%s", f"https://x/bot{TOKEN}/getMe", "@someone", "+7 701 123 45 67")
    text = stream.getvalue()
    assert TOKEN not in text and "someone" not in text and "701" not in text
    assert "[user]" in text and "[phone]" in text


def test_filter_removes_token_from_exception_text(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise RuntimeError(f"could not reach https://api.telegram.org/bot{TOKEN}/getUpdates for 87011234567")
    except RuntimeError:
        logger.exception("network trouble")
    text = stream.getvalue()
    assert "RuntimeError" in text and "Traceback" in text
    assert TOKEN not in text and "87011234567" not in text


def test_filter_removes_a_secret_that_does_not_look_like_a_token() -> None:
    """The webhook secret or pseudonym key, also in its URL-encoded form."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(["hunter2:pepper/salt"]))
    logger = logging.getLogger("komek.test.privacy.secret")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error("key is %r, in a URL %s", "hunter2:pepper/salt", "https://x/?k=hunter2%3Apepper%2Fsalt")
    finally:
        logger.removeHandler(handler)
    assert "hunter2" not in stream.getvalue()
    assert stream.getvalue().count("[secret]") == 2


def test_filter_survives_args_that_do_not_fit(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.error("two %s %s but one given", TOKEN)
    logger.error("a dict %(x)s", {"y": TOKEN})
    logger.error(ValueError(f"not a string {TOKEN}"))
    text = stream.getvalue()
    assert text.count("ERROR") == 3
    assert TOKEN not in text


def test_install_log_redaction_covers_root_handlers_and_quiets_httpx() -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    try:
        redactor = install_log_redaction([TOKEN])
        install_log_redaction([TOKEN])  # twice: still one filter per handler
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        assert logging.getLogger("httpx").level == logging.WARNING
        assert logging.getLogger("httpcore").level == logging.WARNING
        logging.getLogger("telegram.ext.test").warning("token %s from @user_name", TOKEN)
        assert TOKEN not in stream.getvalue() and "user_name" not in stream.getvalue()
        later = logging.StreamHandler(io.StringIO())
        later.addFilter(redactor)  # the documented way for handlers added afterwards
    finally:
        root.removeHandler(handler)
        for h in root.handlers:
            for f in [f for f in h.filters if isinstance(f, RedactingFilter)]:
                h.removeFilter(f)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
