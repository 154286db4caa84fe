"""The streaming 8 kHz <-> 24 kHz resampler: no chunk edges, small delay, strong alias rejection."""

import numpy as np
import pytest

from actors.resample import DELAY_SECONDS, LOWPASS, Downsampler, Upsampler

RNG = np.random.default_rng(7)


def noise(n, level=3000):
    return (RNG.standard_normal(n) * level).astype(np.int16)


def tone(freq, rate, seconds=0.5, level=10000):
    t = np.arange(int(rate * seconds)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def in_chunks(resampler, signal, sizes):
    out, i = [], 0
    for size in sizes:
        out.append(resampler.process(signal[i : i + size]))
        i += size
    out.append(resampler.process(signal[i:]))
    return np.concatenate(out)


def rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, dtype=float) ** 2)))


class TestNoEdgeArtefacts:
    @pytest.mark.parametrize("sizes", [[160] * 49, [1, 7, 3, 500, 160, 2, 1000], [37] * 200])
    def test_upsampling_in_chunks_equals_one_shot(self, sizes):
        """8k->24k cut into any chunk sizes gives the same samples as filtering the whole signal."""
        signal = noise(8000)
        assert np.array_equal(in_chunks(Upsampler(), signal, sizes), Upsampler().process(signal))

    @pytest.mark.parametrize("sizes", [[480] * 49, [1, 2, 5, 481, 479, 1000, 3], [101] * 200])
    def test_downsampling_in_chunks_equals_one_shot(self, sizes):
        """24k->8k cut into any chunk sizes (keeping the 3:1 phase across chunks) matches one shot."""
        signal = noise(24000)
        assert np.array_equal(in_chunks(Downsampler(), signal, sizes), Downsampler().process(signal))

    def test_output_matches_reference_convolution(self):
        """The polyphase paths compute the textbook filter-then-decimate / stuff-then-filter result."""
        x = noise(2400)
        reference_down = np.convolve(x.astype(float), LOWPASS)[: len(x)][::3]
        assert np.max(np.abs(Downsampler().process(x) - reference_down)) <= 0.5 + 1e-9
        stuffed = np.zeros(len(x) * 3)
        stuffed[::3] = x
        reference_up = np.convolve(stuffed, LOWPASS * 3)[: len(stuffed)]
        assert np.max(np.abs(Upsampler().process(x) - reference_up)) <= 0.5 + 1e-9

    def test_reset_forgets_history(self):
        """After reset the resampler behaves like a new one (used after gaps and between items)."""
        up = Upsampler()
        up.process(noise(500))
        up.reset()
        frame = noise(160)
        assert np.array_equal(up.process(frame), Upsampler().process(frame))


class TestDelay:
    @staticmethod
    def measured_delay_ms(signal_in, rate_in, signal_out, rate_out):
        """Delay from the cross-correlation peak, with the input brought to the output rate."""
        ratio = rate_out // rate_in if rate_out > rate_in else None
        if ratio:
            ref = np.zeros(len(signal_in) * ratio)
            ref[::ratio] = signal_in
            ref = np.convolve(ref, np.ones(ratio), mode="same")  # sample-and-hold reference
        else:
            ref = signal_in[:: rate_in // rate_out].astype(float)
        corr = np.correlate(signal_out.astype(float), ref.astype(float), mode="full")
        lag = int(np.argmax(corr)) - (len(ref) - 1)
        return lag * 1000 / rate_out

    def test_design_delay_is_under_two_ms(self):
        """The linear-phase filter delays both directions by 40 samples at 24 kHz: 1.67 ms."""
        assert pytest.approx(1.667, abs=0.01) == DELAY_SECONDS * 1000
        assert DELAY_SECONDS <= 0.002

    def test_measured_delay_of_a_click_through_both_directions(self):
        """A click sent 8k->24k->8k comes back within 2 samples of 2 x 1.67 ms, and each leg is <= 2 ms."""
        click = np.zeros(800, dtype=np.int16)
        click[100] = 20000
        up = Upsampler().process(click)
        up_delay_ms = (int(np.argmax(up)) - 300) / 24
        down = Downsampler().process(up)
        round_trip_ms = (int(np.argmax(down)) - 100) / 8
        assert up_delay_ms <= 2.0
        assert round_trip_ms == pytest.approx(2 * DELAY_SECONDS * 1000, abs=0.25)


class TestAliasRejection:
    @pytest.mark.parametrize("freq", [4600, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 11900])
    def test_tones_that_would_alias_into_the_telephone_band_are_suppressed_60_db(self, freq):
        """24k->8k: every tone whose alias lands in 0-3.4 kHz comes out at least 60 dB down."""
        passband = rms(Downsampler().process(tone(1000, 24000))[100:])
        # Floor at half an LSB: some tones come out as exact zeros after rounding to int16.
        aliased = max(rms(Downsampler().process(tone(freq, 24000))[100:]), 0.5)
        assert 20 * np.log10(aliased / passband) <= -60

    @pytest.mark.parametrize("freq", [300, 1000, 2000, 3000, 3400])
    def test_telephone_band_passes_flat(self, freq):
        """Tones inside 300-3400 Hz keep their level within 0.2 dB in both directions."""
        level_in = rms(tone(freq, 8000))
        down = rms(Downsampler().process(tone(freq, 24000))[100:])
        up = rms(Upsampler().process(tone(freq, 8000))[300:])
        assert abs(20 * np.log10(down / level_in)) < 0.2
        assert abs(20 * np.log10(up / level_in)) < 0.2

    def test_upsampling_images_are_suppressed_60_db(self):
        """8k->24k: the image of a 3.4 kHz tone (at 4.6 kHz and above) is at least 60 dB down."""
        out = Upsampler().process(tone(3400, 8000, seconds=1.0)).astype(float)[600:]
        spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
        freqs = np.fft.rfftfreq(len(out), 1 / 24000)
        signal_peak = spectrum[(freqs > 3300) & (freqs < 3500)].max()
        image_peak = spectrum[freqs >= 4600].max()
        assert 20 * np.log10(image_peak / signal_peak) <= -60
