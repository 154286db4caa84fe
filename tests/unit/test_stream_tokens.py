"""One-time stream tokens: bound to a CallSid, short-lived, consumed by their first use."""

from gateway.twilio.stream_tokens import Redemption, StreamTokens


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_token_redeems_once_for_its_call():
    """The first redemption with the right CallSid succeeds; a second one is refused."""
    tokens = StreamTokens(ttl_seconds=30, clock=Clock())
    token = tokens.mint("CA1")
    assert tokens.redeem(token, "CA1") is Redemption.ACCEPTED
    assert tokens.redeem(token, "CA1") is Redemption.UNKNOWN


def test_a_token_presented_for_another_call_is_refused_and_burnt():
    """Presenting a token with the wrong CallSid fails and uses the token up."""
    tokens = StreamTokens(ttl_seconds=30, clock=Clock())
    token = tokens.mint("CA1")
    assert tokens.redeem(token, "CA2") is Redemption.WRONG_CALL
    assert tokens.redeem(token, "CA1") is Redemption.UNKNOWN


def test_an_expired_token_is_refused():
    """A token presented after its time to live is refused."""
    clock = Clock()
    tokens = StreamTokens(ttl_seconds=30, clock=clock)
    token = tokens.mint("CA1")
    clock.now = 30.0
    assert tokens.redeem(token, "CA1") is Redemption.EXPIRED


def test_unknown_tokens_are_refused():
    """A token never minted is refused."""
    assert StreamTokens(ttl_seconds=30, clock=Clock()).redeem("made-up", "CA1") is Redemption.UNKNOWN


def test_expired_tokens_are_forgotten_and_the_book_is_bounded():
    """Expired grants are purged on mint, and a flood evicts the oldest instead of growing."""
    clock = Clock()
    tokens = StreamTokens(ttl_seconds=10, capacity=3, clock=clock)
    for call in range(3):
        tokens.mint(f"CA{call}")
    clock.now = 11
    tokens.mint("CAnew")
    assert len(tokens) == 1
    for call in range(5):
        tokens.mint(f"CAflood{call}")
    assert len(tokens) == 3
    assert tokens.evicted == 3


def test_any_replica_sharing_the_key_admits_the_stream_once():
    """Webhook on one process, stream on another: the token proves itself under the shared key."""
    key = b"k" * 32
    webhook_side = StreamTokens(ttl_seconds=30, key=key, clock=Clock())
    stream_side = StreamTokens(ttl_seconds=30, key=key, clock=Clock())
    token = webhook_side.mint("CA1")
    assert stream_side.redeem(token, "CA1") is Redemption.ACCEPTED
    assert stream_side.redeem(token, "CA1") is Redemption.UNKNOWN
    assert stream_side.redeem(token, "CA2") is Redemption.UNKNOWN


def test_a_token_from_another_key_or_altered_is_refused():
    """Without the key, no token can be made or stretched: a changed expiry breaks the MAC."""
    token = StreamTokens(ttl_seconds=30, key=b"a" * 32, clock=Clock()).mint("CA1")
    other = StreamTokens(ttl_seconds=30, key=b"b" * 32, clock=Clock())
    assert other.redeem(token, "CA1") is Redemption.UNKNOWN
    version, expires, nonce, mac = token.split(".")
    ours = StreamTokens(ttl_seconds=30, key=b"a" * 32, clock=Clock())
    assert ours.redeem(f"{version}.{int(expires) * 10}.{nonce}.{mac}", "CA1") is Redemption.UNKNOWN


def test_outstanding_counts_tokens_minted_and_not_yet_used():
    clock = Clock()
    tokens = StreamTokens(ttl_seconds=30, clock=clock)
    first, _ = tokens.mint("CA1"), tokens.mint("CA2")
    assert tokens.outstanding() == 2
    tokens.redeem(first, "CA1")
    assert tokens.outstanding() == 1
    clock.now = 31
    assert tokens.outstanding() == 0


def test_a_token_whose_mac_is_not_ascii_is_refused_not_an_error():
    """`start.customParameters` is the caller's JSON: a MAC with non-ASCII text is unknown."""
    tokens = StreamTokens(30)
    version, expires, nonce, _ = tokens.mint("CA1").split(".")
    assert tokens.redeem(f"{version}.{expires}.someone-elses.ééé", "CA1") is Redemption.UNKNOWN
    assert tokens.redeem(f"{version}.{expires}.{nonce}.ééé", "CA1") is Redemption.WRONG_CALL  # ours: burnt


def test_replay_is_refused_for_a_tokens_whole_life_however_many_calls_come():
    """A burst of calls larger than the book's capacity must not evict the nonce of a token
    that is still valid: presenting it again is refused until it expires."""
    clock = Clock()
    tokens = StreamTokens(ttl_seconds=10, capacity=2, clock=clock)
    first = tokens.mint("CA0")
    assert tokens.redeem(first, "CA0") is Redemption.ACCEPTED
    for call in range(1, 5):
        assert tokens.redeem(tokens.mint(f"CA{call}"), f"CA{call}") is Redemption.ACCEPTED
    assert tokens.redeem(first, "CA0") is Redemption.UNKNOWN
    clock.now = 11
    assert tokens.redeem(first, "CA0") is not Redemption.ACCEPTED  # expired by now
