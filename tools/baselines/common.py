"""What the classic baselines share: a step timer for Keras 3 or tf-keras, and a tiny CLI."""
from __future__ import annotations

import argparse
import json

from zoo.timing import step_timer_class


def meter(keras, batch_size: int):
    """A callback of the given Keras module that times training steps the way zoo's
    ThroughputMeter does; `.examples_per_sec()` leaves out the first epoch."""
    return step_timer_class(keras)(batch_size)


def result(timer, accuracy: float, epochs: int, batch_size: int, train_examples: int) -> dict:
    return {"examples_per_sec": timer.examples_per_sec(), "accuracy": float(accuracy),
            "epochs": epochs, "batch_size": batch_size, "train_examples": train_examples}


def fit_and_score(keras, model, train, test, loss: str, epochs: int, batch_size: int,
                  verbose="auto") -> dict:
    """The classic scripts' ending: compile with Adam, `fit` on the NumPy arrays (timed),
    `evaluate` on the test arrays; `result`'s dict."""
    (x_train, y_train), (x_test, y_test) = train, test
    model.compile(loss=loss, optimizer="adam", metrics=["accuracy"])
    timer = meter(keras, batch_size)
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
              validation_data=(x_test, y_test), callbacks=[timer], verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return result(timer, accuracy, epochs, batch_size, len(x_train))


def main(run, doc: str):
    """`python -m tools.baselines.NAME --data=DIR [--epochs=N] [--max_train=N]`."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--data", required=True, help="the data directory")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max_train", type=int, default=0, help="0 = all training examples")
    args = parser.parse_args()
    print(json.dumps(run(args.data, epochs=args.epochs, max_train=args.max_train), indent=2))
