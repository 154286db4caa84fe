"""G.711 mu-law tables: bit-exact with the reference codec for every possible input."""

import pathlib
import warnings

import numpy as np

from actors import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the oracle; Python 3.11 still ships it, the product never imports it


def test_encode_matches_reference_for_all_16_bit_samples():
    """All 65,536 PCM16 values encode to the same mu-law byte as audioop.lin2ulaw."""
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert g711.encode(pcm) == audioop.lin2ulaw(pcm.tobytes(), 2)


def test_decode_matches_reference_for_all_256_codes():
    """All 256 mu-law codes decode to the same PCM16 value as audioop.ulaw2lin."""
    codes = bytes(range(256))
    assert g711.decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)


def test_silence_code_decodes_to_zero():
    """0xFF, the byte Twilio pads with, is digital silence."""
    assert g711.decode(bytes([g711.ULAW_SILENCE])).tolist() == [0]


def test_product_never_imports_audioop():
    """audioop is gone in Python 3.13, so no module of the product may import it."""
    for path in pathlib.Path(__file__).parents[2].glob("*/**/*.py"):
        if (path.parts[-3:-1] and "tests" in path.parts) or ".venv" in path.parts:
            continue
        assert "import audioop" not in path.read_text(), path
