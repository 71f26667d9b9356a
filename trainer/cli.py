"""`tinysense train TASK`: one sub-command per task, each in its own module."""
from __future__ import annotations

import importlib

#: task -> module with add_arguments(parser) and run(args)
TASKS = {
    "digits": ("trainer.digits_train", "handwritten (and printed) digits, 28x28 images"),
    "kws": ("trainer.kws_train", "keyword spotting on 1 s audio clips"),
    "meter": ("trainer.meter_train", "meter digits in tenths, 32x20 crops: number wheels or (--display lcd) LCD digits"),
}


def add_arguments(parser) -> None:
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for name, (module_name, help_text) in TASKS.items():
        sub = tasks.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sub)
        sub.set_defaults(train=module.run)


def run(args) -> int:
    return int(args.train(args) or 0)
