"""Personal data out of everything we keep or log: who asked what is sensitive for a refugee.

`scrub` replaces phone numbers, e-mails, IINs, document numbers, @usernames, t.me links and bot
tokens with tags such as "[phone]"; `pseudonym` turns a Telegram id into a keyed hash so the
database never holds the id itself; `RedactingFilter` / `install_log_redaction` keep the bot token
and personal data out of log output. Pure: no file, network, database or clock.

Every regular expression here is anchored so that a failed attempt cannot restart inside the run
it just scanned (a digit run, an e-mail local part), which keeps `scrub` linear in the input.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import traceback
from urllib.parse import quote

PHONE, EMAIL, IIN, DOC, USER, LINK, TOKEN = "[phone]", "[email]", "[iin]", "[doc]", "[user]", "[link]", "[token]"

# --- simple patterns, applied in this order (the token before anything that eats digits) ---------

_TOKEN_RE = re.compile(r"(?<!\d)\d{6,}:[A-Za-z0-9_-]{30,}")
_LINK_CHARS = r"[^\s<>()\[\]{}\"'«»]"
_LINK_RE = re.compile(
    r"(?<![\w.])(?:https?://)?(?:www\.)?(?:(?:t|telegram)\.(?:me|dog)/|tg://)"
    rf"(?:{_LINK_CHARS}*[^\s<>()\[\]{{}}\"'«».,;:!?])?",
    re.IGNORECASE,
)
_EMAIL_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL_RE = re.compile(rf"(?<!{_EMAIL_LOCAL}){_EMAIL_LOCAL}+@[\w-]+(?:\.[\w-]+)+")
_USER_RE = re.compile(r"(?<![\w@])@[A-Za-z]\w{2,}")
# A document number glued to a one- or two-letter series: N12345678, АВ1234567.
_DOC_LETTERS_RE = re.compile(r"(?<!\w)[A-Za-zА-ЯЁа-яёӘҒҚҢӨҰҮҺІәғқңөұүһі]{1,2}\d{6,9}(?!\d)")

# --- digit runs: groups of digits joined by phone separators, judged group by group --------------

_SEP = "[ \u00a0\u2009\u202f\\-\u2010-\u2015.()]"
_NUMBERISH_RE = re.compile(rf"(?<!\d)(?:\+[ \u00a0]?)?\(?\d+(?:{_SEP}{{1,4}}\d+)*")
_DIGITS_RE = re.compile(r"\d+")
_MAX_PHONE_GROUPS = 6  # "+7 (701) 123 45 67" has five; a window never needs more


def _is_date(groups: list[str], seps: list[str], k: int) -> bool:
    """12.05.2024, 2024-05-12, 12-05-2024: three groups that read as a date, kept as they are."""
    if k + 2 >= len(groups) or seps[k + 1] != seps[k + 2] or seps[k + 1] not in (".", "-"):
        return False
    a, b, c = groups[k : k + 3]
    if len(a) <= 2 and len(b) <= 2 and (len(c) == 4 or (len(c) == 2 and seps[k + 1] == ".")):
        first, second = int(a), int(b)
    elif len(a) == 4 and len(b) <= 2 and len(c) <= 2:
        first, second = int(c), int(b)
    else:
        return False
    return 1 <= first <= 31 and 1 <= second <= 31 and min(first, second) <= 12


def _classify(groups: list[str], seps: list[str], plus: bool) -> str | None:
    """The tag for one window of consecutive digit groups, or None when it is not personal data."""
    digits = "".join(groups)
    n = len(digits)
    if len(groups) == 1:
        if plus:
            return PHONE if 7 <= n <= 15 else None
        if n == 12:
            return IIN
        if (n == 11 and digits[0] in "78") or (n == 10 and digits[0] == "7"):
            return PHONE
        return DOC if n >= 8 else None
    sizes = [len(g) for g in groups]
    if all(s == 4 and g[:2] in ("19", "20") for g, s in zip(groups, sizes, strict=True)):
        return None  # 1990 2000 2010
    if sizes == [4, 4, 4, 4]:
        return DOC  # a bank card number
    if min(sizes[1:]) < 2 or max(sizes[:-1]) > 4 or sizes[-1] > 10:
        return None  # "1 2 3", "192.168.1.1", a long run that is its own thing
    thousands = not plus and len(set(seps)) == 1 and seps[0] in (" ", "\u00a0", ".")
    if thousands and sizes[0] <= 3 and all(s == 3 for s in sizes[1:]):
        return None  # 1 500 000 тенге
    if plus:
        return PHONE if 7 <= n <= 15 else None
    if 9 <= n <= 15 or (n == 7 and sizes in ([3, 2, 2], [3, 4])):
        return PHONE
    return None


def _scrub_numberish(match: re.Match[str]) -> str:
    """Split a digit run into phone / IIN / document windows, leaving dates, years and counts alone."""
    span = match.group(0)
    spots = [(m.start(), m.end()) for m in _DIGITS_RE.finditer(span)]
    groups = [span[a:b] for a, b in spots]
    seps = [""] + [span[spots[i - 1][1] : spots[i][0]] for i in range(1, len(spots))]
    protected = [False] * len(groups)
    for k in range(len(groups)):
        if _is_date(groups, seps, k):
            protected[k] = protected[k + 1] = protected[k + 2] = True
    plus = span.startswith("+")
    out: list[str] = []
    i = 0
    while i < len(groups):
        lead = span[: spots[0][0]] if i == 0 else seps[i]
        tag, end = None, i
        if not protected[i]:
            last = i
            while last + 1 < len(groups) and last + 1 - i < _MAX_PHONE_GROUPS and not protected[last + 1]:
                last += 1
            for end in range(last, i - 1, -1):  # the longest window that reads as personal data wins
                tag = _classify(groups[i : end + 1], seps[i + 1 : end + 1], plus and i == 0)
                if tag is not None:
                    break
        if tag is None:
            out.append(lead + groups[i])
            i += 1
            continue
        out.append(tag if i == 0 else lead + tag)
        i = end + 1
    return "".join(out)


def _scrub_once(text: str) -> str:
    text = _TOKEN_RE.sub(TOKEN, text)
    text = _LINK_RE.sub(LINK, text)
    text = _EMAIL_RE.sub(EMAIL, text)
    text = _USER_RE.sub(USER, text)
    text = _DOC_LETTERS_RE.sub(DOC, text)
    return _NUMBERISH_RE.sub(_scrub_numberish, text)


def scrub(text: str) -> str:
    """Replace personal data with tags; idempotent, linear time, never raises.

    A replacement can expose a neighbour ("87011234567@name" → "[phone]@name"), so passes repeat
    until nothing changes (two passes in practice). Should anything unexpected go wrong, every
    digit and "@" is blanked rather than letting the text through.
    """
    try:
        for _ in range(4):
            scrubbed = _scrub_once(text)
            if scrubbed == text:
                break
            text = scrubbed
        return text
    except Exception:
        return re.sub(r"[\d@]", "#", str(text))


def pseudonym(user_id: int, key: bytes) -> str:
    """A stable stand-in for a Telegram id: HMAC-SHA256 keyed with our secret, 32 hex characters.

    Keyed, so nobody without the key can test a known id against the database.
    """
    return hmac.new(key, str(user_id).encode("ascii"), hashlib.sha256).hexdigest()[:32]


class RedactingFilter(logging.Filter):
    """Rewrites each record so that secrets never appear and personal data is scrubbed.

    Used as a handler filter (handler filters see every record, also ones propagated from child
    loggers such as "telegram.ext"). The record is rendered once here, so a format string whose
    args do not match cannot raise later in the handler.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        variants = {v for s in secrets if len(s) >= 4 for v in (s, quote(s, safe=""), quote(s))}
        self._secrets = sorted(variants, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Secrets out first (they need not look like a token), then the generic scrub."""
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        return scrub(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # args that do not fit the format: keep both, rendered plainly
            message = f"{record.msg!s} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_log_redaction(secrets: list[str]) -> RedactingFilter:
    """Put one RedactingFilter on every handler there is, and quiet httpx (it logs token URLs).

    Root gets a stderr handler if it has none, so nothing is ever logged unfiltered. Handlers
    added later must take the returned filter: `handler.addFilter(f)`.
    """
    redactor = RedactingFilter(secrets)
    root = logging.getLogger()
    if not root.handlers:
        fallback = logging.StreamHandler()
        fallback.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fallback)
    loggers = [root, *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(redactor)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redactor


# ---------------------------------------------------------------- sealed chat references

_SEAL_TAG = 8


def seal(chat_id: int, key: bytes, nonce: bytes | None = None) -> str:
    """Encrypt a chat id for the few opt-in features that must write back to a user later
    (announcements, a person's reply). Without KOMEK_SECRET the database shows only noise."""
    nonce = nonce if nonce is not None else os.urandom(8)
    data = str(int(chat_id)).encode()
    stream = hmac.new(key, b"seal:" + nonce, hashlib.sha256).digest()
    cipher = bytes(a ^ b for a, b in zip(data, stream, strict=False))
    tag = hmac.new(key, b"tag:" + nonce + cipher, hashlib.sha256).digest()[:_SEAL_TAG]
    return base64.urlsafe_b64encode(nonce + cipher + tag).decode()


def unseal(token: str, key: bytes) -> int | None:
    """The chat id inside a seal, or None when the seal is damaged or made with another key."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (ValueError, TypeError):
        return None
    if len(raw) < 8 + 1 + _SEAL_TAG:
        return None
    nonce, cipher, tag = raw[:8], raw[8:-_SEAL_TAG], raw[-_SEAL_TAG:]
    expected = hmac.new(key, b"tag:" + nonce + cipher, hashlib.sha256).digest()[:_SEAL_TAG]
    if not hmac.compare_digest(tag, expected):
        return None
    stream = hmac.new(key, b"seal:" + nonce, hashlib.sha256).digest()
    try:
        return int(bytes(a ^ b for a, b in zip(cipher, stream, strict=False)).decode())
    except ValueError:
        return None
