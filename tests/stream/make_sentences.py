"""Write synthetic non-keyword sentences as wavs, for `python -m edge.bench.stream --sentences DIR`.

    python -m tests.stream.make_sentences DIR [--speakers 10]

Every sentence of `trainer.synth_speech.NON_KEYWORD_SENTENCES` by each of `--speakers` synthetic
speakers (a deterministic pool over the installed synthesizers). Kept out of `edge/`, which never
imports the trainer.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from edge.hearing.audio import write_wav
from trainer.synth_speech import NON_KEYWORD_SENTENCES, speaker_pool, synthesize_sentence


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the wavs")
    parser.add_argument("--speakers", type=int, default=10, help="synthetic speakers (default: 10)")
    parser.add_argument("--seed", type=int, default=1, help="speaker pool seed (default: 1)")
    args = parser.parse_args(argv)
    for speaker in speaker_pool(args.speakers, seed=args.seed):
        for n, text in enumerate(NON_KEYWORD_SENTENCES):
            name = f"{speaker.id.replace(':', '_').replace('+', '_')}_{n:02d}.wav"
            write_wav(args.out / name, synthesize_sentence(text, speaker))
    print(f"wrote {args.speakers * len(NON_KEYWORD_SENTENCES)} sentences to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
