#!/usr/bin/env bash
# Regenerates the spoken clips shipped in the package (raw G.711 mu-law, 8 kHz, mono).
# Needs espeak-ng and sox (apt-get install espeak-ng sox). The clips are committed, so
# neither tool is needed to build, run or test the gateway.
set -euo pipefail
cd "$(dirname "$0")/../.."
speak() {  # speak OUT VOICE TEXT
  local wav; wav=$(mktemp --suffix=.wav)
  espeak-ng -v "$2" -s 150 -w "$wav" "$3"
  sox -D "$wav" -r 8000 -c 1 -t raw -e mu-law -b 8 "$1" highpass 200 lowpass 3400 norm -3
  rm -f "$wav"
}
speak gateway/ai/local_agent/clips/greeting.ulaw en-us \
  "Hello, this is the loopback agent. Say something, and I will play it back."
speak gateway/ai/local_agent/clips/goodbye.ulaw en-us \
  "Thanks for calling. Goodbye!"
speak gateway/ai/local_agent/clips/transferring.ulaw en-us \
  "One moment, I am transferring you now."
speak gateway/ai/clips/apology.ulaw en-us \
  "Sorry, the assistant is unavailable. Please call again later."
speak gateway/simulator/clips/caller.ulaw en-gb+m3 \
  "Testing one two three, can you hear me?"
