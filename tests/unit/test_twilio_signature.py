"""X-Twilio-Signature, checked against the vectors of twilio-python's own unit tests."""

import pytest

from gateway.twilio.signature import compute_signature, is_valid_signature

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": ["CA1234567890ABCDE"],
    "Caller": ["+14158675309"],
    "Digits": ["1234"],
    "From": ["+14158675309"],
    "To": ["+18005551212"],
}


class TestPublishedVectors:
    def test_url_with_form_fields(self):
        """The base vector of twilio-python's test_request_validator."""
        assert compute_signature(TOKEN, URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="

    @pytest.mark.parametrize(
        ("url", "signature"),
        [
            ("https://mycompany.com:443/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="),
            ("http://mycompany.com:80/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
            ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        ],
    )
    def test_urls_with_ports(self, url, signature):
        """The port is part of what Twilio signs when it sends one."""
        assert compute_signature(TOKEN, url, PARAMS) == signature

    def test_repeated_keys_are_deduplicated_and_sorted(self):
        """A field sent several times contributes each distinct value once, in sorted order."""
        params = {"Sid": ["CA123"], "SidAccount": ["AC123"], "Digits": ["5678", "1234", "1234"]}
        assert compute_signature(TOKEN, URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


class TestValidation:
    def test_signature_without_port_validates_a_request_seen_with_default_port(self):
        """Twilio is inconsistent about ports, so both spellings of the URL are accepted."""
        assert is_valid_signature(
            TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        )
        assert is_valid_signature(TOKEN, URL, PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")

    def test_wrong_or_missing_signature_is_refused(self):
        """A tampered field, a wrong token or no signature at all fails."""
        assert not is_valid_signature(TOKEN, URL, {**PARAMS, "Digits": ["9"]}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
        assert not is_valid_signature("other", URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
        assert not is_valid_signature(TOKEN, URL, PARAMS, None)
        assert not is_valid_signature(TOKEN, URL, PARAMS, "")

    def test_websocket_upgrade_signs_the_wss_url_alone(self):
        """A media stream upgrade is signed over the wss:// URL with no fields."""
        url = "wss://gw.example.com/twilio/media"
        signature = compute_signature(TOKEN, url)
        assert is_valid_signature(TOKEN, url, None, signature)
        assert not is_valid_signature(TOKEN, "https://gw.example.com/twilio/media", None, signature)

    def test_empty_auth_token_never_validates(self):
        """With no auth token, nothing is accepted (fail closed)."""
        assert not is_valid_signature("", URL, PARAMS, compute_signature("", URL, PARAMS))

    def test_a_signature_that_is_not_ascii_is_refused_not_an_error(self):
        """Header bytes arrive as latin-1 text: a non-ASCII signature is simply wrong."""
        assert not is_valid_signature(TOKEN, URL, PARAMS, "é\xff" + "A" * 26)
