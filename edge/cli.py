"""The `tinysense` command line.

Each subcommand lives in its own module with `add_arguments(parser)` and `run(args) -> int`.
Only the chosen subcommand's module is imported, so `tinysense listen` on a Pi never loads
TensorFlow, and a missing optional extra is reported as one line naming what to install.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys

from edge import __version__
from edge.core.errors import TinysenseError

#: name -> (module, one-line help, extra that provides its imports, top-level modules it needs)
COMMANDS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "train": ("trainer.cli", "train a model: digits or kws", "train", ("tensorflow",)),
    "export": ("export.cli", "quantize a trained model into a bundle (float32, float16, dynamic, int8)", "train", ("tensorflow",)),
    "bench": ("edge.bench.model_bench", "accuracy, size, latency and memory of a bundle's variants", "edge", ()),
    "classify-image": ("edge.seeing.classify", "classify image files with a digits bundle", "edge", ()),
    "read-digits": ("edge.seeing.read_digits", "read multi-digit numbers from a camera, images or a video", "edge", ()),
    "listen": ("edge.hearing.listen", "streaming keyword spotting daemon (microphone, wav file or stdin)", "edge", ()),
    "record-clips": ("edge.hearing.record_clips", "record 1 s clips of a word from the microphone (to enrol a custom wake word)", "edge", ()),
    "cascade": ("export.cascade", "make a two-stage wake-word bundle: a kws proposer and a speech-embedding confirmer", "edge", ()),
    "install-service": ("edge.hearing.service", "install the listen daemon as a systemd service", "edge", ()),
    "verify": ("export.verify", "check LiteRT and TFLite Micro give the same int8 results", "dev", ("tflite_micro",)),
    "quant-report": ("export.quant_report", "per-layer int8 quantization error report", "train", ("tensorflow",)),
    "edgetpu-check": ("export.edgetpu", "check an int8 model against the Edge TPU rules", "edge", ()),
    "firmware": ("export.firmware", "write C arrays and headers for microcontroller firmware", "dev", ("tflite_micro",)),
    "make-scenes": ("trainer.scenes", "generate camera-like test scenes of multi-digit numbers", "train", ("cv2",)),
}


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinysense", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tinysense {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text, extra, needs) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = import_command(name, module_name, extra, needs)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def missing_extra(name: str, module: str, extra: str) -> TinysenseError:
    return TinysenseError(f"'tinysense {name}' needs the Python package {module}: pip install 'tinysense[{extra}]'")


def import_command(name: str, module_name: str, extra: str, needs: tuple[str, ...] = ()):
    """The command's module, after checking up front (before minutes of work) that the packages
    its run needs are installed; a missing one is one line naming the extra to install."""
    for module in needs:
        if importlib.util.find_spec(module) is None:
            raise missing_extra(name, module, extra)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in {"edge", "trainer", "export"}:
            raise
        raise missing_extra(name, exc.name, extra) from None


def configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def report(chosen: str | None, exc: Exception) -> int:
    print(f"tinysense {chosen or ''}: error: {exc}".replace("  ", " "), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter, for commands that load it
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        parser = build_parser(chosen if chosen in COMMANDS else None)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        configure_logging(args.verbose, args.quiet)
        return int(args.run(args) or 0)
    except ModuleNotFoundError as exc:  # a package a command imports late, past the up-front check
        if chosen not in COMMANDS or not exc.name or exc.name.split(".")[0] in {"edge", "trainer", "export"}:
            raise
        return report(chosen, missing_extra(chosen, exc.name, COMMANDS[chosen][2]))
    except TinysenseError as exc:
        return report(chosen, exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
