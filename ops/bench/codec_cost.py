"""Per-frame cost of the codec path, and the resampler's measured delay and alias rejection.

Run: make bench-codec   (or .venv/bin/python ops/bench/codec_cost.py)
Prints figures, asserts nothing: timings belong to benchmarks, not tests.
"""

from __future__ import annotations

import json
import platform
import timeit

import numpy as np

from actors import g711, realtime
from actors.resample import DELAY_SECONDS, Downsampler, Upsampler
from actors.twilio_media import TwilioMediaProtocol

RNG = np.random.default_rng(1)
FRAME_ULAW = g711.encode((RNG.standard_normal(160) * 3000).astype(np.int16))
FRAME_PCM8K = g711.decode(FRAME_ULAW)
FRAME_PCM24K = (RNG.standard_normal(480) * 3000).astype(np.int16)


def per_call_us(fn, number=20000, repeat=7) -> float:
    """Median over `repeat` runs of the mean cost of one call, in microseconds."""
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return float(np.median(runs)) / number * 1e6


def costs() -> dict[str, float]:
    up, down = Upsampler(), Downsampler()
    protocol = TwilioMediaProtocol()
    stream = "MZ" + "a" * 32
    protocol.receive(
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": stream,
                "start": {
                    "accountSid": "AC" + "0" * 32,
                    "streamSid": stream,
                    "callSid": "CA" + "0" * 32,
                    "tracks": ["inbound"],
                    "customParameters": {},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
    )
    media = protocol.media(FRAME_ULAW).replace(
        '"media":{', '"sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0",'
    )
    return {
        "mu-law decode (160 B -> 160 samples)": per_call_us(lambda: g711.decode(FRAME_ULAW)),
        "mu-law encode (160 samples -> 160 B)": per_call_us(lambda: g711.encode(FRAME_PCM8K)),
        "resample 8k -> 24k (160 -> 480 samples)": per_call_us(lambda: up.process(FRAME_PCM8K)),
        "resample 24k -> 8k (480 -> 160 samples)": per_call_us(lambda: down.process(FRAME_PCM24K)),
        "uplink transcode (decode + 8k->24k)": per_call_us(lambda: up.process(g711.decode(FRAME_ULAW))),
        "downlink transcode (24k->8k + encode)": per_call_us(lambda: g711.encode(down.process(FRAME_PCM24K))),
        "parse Twilio media message": per_call_us(lambda: _reparse(protocol, media)),
        "format Twilio media message": per_call_us(lambda: protocol.media(FRAME_ULAW)),
        "format input_audio_buffer.append": per_call_us(lambda: realtime.input_audio_append(FRAME_ULAW)),
    }


def _reparse(protocol: TwilioMediaProtocol, message: str) -> None:
    protocol._next_sequence = 2  # keep the sequence counter from counting every repeat as a gap
    protocol.receive(message)


def measured_delay_ms() -> tuple[float, float]:
    """Delay of a click through 8k->24k, and through 24k->8k, from where its peak lands."""
    click8 = np.zeros(800, dtype=np.int16)
    click8[100] = 20000
    up_delay = (int(np.argmax(Upsampler().process(click8))) - 300) / 24
    click24 = np.zeros(2400, dtype=np.int16)
    click24[300] = 20000
    down = Downsampler().process(click24).astype(float)
    peak = int(np.argmax(down))
    # Sub-sample peak position by parabolic interpolation: the 24 kHz delay is not a whole 8 kHz sample.
    a, b, c = down[peak - 1], down[peak], down[peak + 1]
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    down_delay = (peak + offset - 100) / 8
    return up_delay, down_delay


def alias_rejection_db() -> tuple[float, float, float]:
    """Worst level (dB re a 1 kHz tone) of 24k->8k output for input tones that alias into the band.

    Returns the worst case over 4.6-12 kHz (aliases land in 0-3.4 kHz), over 4.0-4.6 kHz
    (aliases land in 3.4-4.0 kHz), and the passband ripple over 0.3-3.4 kHz.
    """

    def level(freq: float) -> float:
        t = np.arange(24000) / 24000
        x = (10000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
        y = Downsampler().process(x)[200:].astype(float)
        return max(float(np.sqrt(np.mean(y**2))), 0.5)  # half an LSB: the int16 floor

    reference = level(1000)
    stop = [20 * np.log10(level(f) / reference) for f in np.arange(4600, 12000, 50)]
    transition = [20 * np.log10(level(f) / reference) for f in np.arange(4000, 4600, 50)]
    passband = [20 * np.log10(level(f) / reference) for f in np.arange(300, 3401, 100)]
    return max(stop), max(transition), max(passband) - min(passband)


def main() -> None:
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}")
    print("\ncost per 20 ms frame (median of 7 runs):")
    for name, cost in costs().items():
        print(f"  {name:<42} {cost:6.2f} us")
    up_delay, down_delay = measured_delay_ms()
    print(
        f"\nresampler delay: design {DELAY_SECONDS * 1000:.3f} ms; measured 8k->24k {up_delay:.3f} ms, "
        f"24k->8k {down_delay:.3f} ms"
    )
    stop, transition, ripple = alias_rejection_db()
    print(
        f"alias rejection 24k->8k: tones 4.6-12 kHz at most {stop:.1f} dB; tones 4.0-4.6 kHz at most "
        f"{transition:.1f} dB; passband 0.3-3.4 kHz ripple {ripple:.3f} dB"
    )


if __name__ == "__main__":
    main()
