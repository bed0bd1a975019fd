"""The inference engine: encoded cell images in, calibrated classifications out.

Pure: no ORM, no Celery. One engine per process, created on first use (in a Celery worker that is after
the fork). It runs the card's LiteRT model, decodes and preprocesses on a small thread pool (OpenCV for
plain PNGs and Pillow for the rest both release the GIL while decoding) and classifies in fixed-size
batches.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.serving.calibration import calibrated_probability
from worker.serving.model_card import ModelCard, ModelFileError, load_model_card, served_model_dir
from worker.serving.preprocessing import CellImageError, prepare_cell_uint8, to_network_input

PARASITIZED, UNINFECTED = "parasitized", "uninfected"
DEFAULT_BATCH_SIZE = 256


@dataclass(frozen=True)
class CellClassification:
    probability: float  # calibrated probability that the cell is Parasitized
    label: str  # PARASITIZED or UNINFECTED
    uncertain: bool  # inside the card's uncertain band: a human should look
    model_version: str


@dataclass(frozen=True)
class CellFailure:
    error: str  # why this one image could not be classified


class LiteRTNetwork:
    """A LiteRT model file of the cell network: preprocessed arrays in, logits and activation maps out.

    Pure and shared: the engine serves through it, and training calibrates and measures through it, so
    the figures on a model card are those of the file that is served (int8 weights included).
    """

    def __init__(self, path: Path, *, input_size: int, threads: int = 2, batch_size: int = DEFAULT_BATCH_SIZE):
        from ai_edge_litert.interpreter import Interpreter

        self.batch_size = batch_size
        try:
            self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(path, f"LiteRT cannot load the model ({exc})") from exc
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or tuple(inputs[0]["shape"][1:]) != (input_size, input_size, 3):
            raise ModelFileError(
                path, f"model input {inputs[0]['shape'].tolist()} does not match the card's {input_size}px"
            )
        self._input = inputs[0]["index"]
        # Outputs are told apart by rank: the logit is (batch, 1), the activation map (batch, h, w, 1).
        by_rank = {len(o["shape"]): o["index"] for o in outputs}
        if set(by_rank) != {2, 4}:
            raise ModelFileError(path, "model must output a logit and an activation map")
        self._logit, self._cam = by_rank[2], by_rank[4]
        self._batch_in_place = 0
        self._lock = threading.Lock()  # one interpreter: one invocation at a time

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._batch_in_place != len(batch):
                self._interpreter.resize_tensor_input(self._input, batch.shape, strict=False)
                self._interpreter.allocate_tensors()
                self._batch_in_place = len(batch)
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._logit)[:, 0].copy(), self._interpreter.get_tensor(self._cam)[
                ..., 0
            ].copy()

    def logits(self, arrays: np.ndarray) -> np.ndarray:
        """Raw logits for preprocessed arrays (n, size, size, 3), batched."""
        arrays = np.ascontiguousarray(arrays, dtype=np.float32)
        return np.concatenate(
            [self._run(arrays[i : i + self.batch_size])[0] for i in range(0, len(arrays), self.batch_size)]
            or [np.zeros(0, np.float32)]
        )

    def activation_map(self, array: np.ndarray) -> tuple[float, np.ndarray]:
        """(logit, class activation map) for one preprocessed cell."""
        logits, maps = self._run(np.ascontiguousarray(array[None], dtype=np.float32))
        return float(logits[0]), maps[0]


class CellClassifier:
    def __init__(self, card: ModelCard, *, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None):
        self.card = card
        self.batch_size = batch_size
        self.threads = threads or min(os.cpu_count() or 1, 4)
        self.network = LiteRTNetwork(
            card.file("tflite"), input_size=card.input_size, threads=self.threads, batch_size=batch_size
        )
        # One decoding thread more than cores: a thread waiting on the GIL leaves a core to the interpreter
        # (measured on 2 cores: 2,177 cells/s with 3 decoders, 2,038 with 2).
        self._pool = ThreadPoolExecutor(max_workers=self.threads + 1, thread_name_prefix="cell-decode")

    # -- arrays --------------------------------------------------------------------------------------
    def logits(self, arrays: np.ndarray) -> np.ndarray:
        """Raw logits for preprocessed arrays (n, size, size, 3), batched."""
        return self.network.logits(arrays)

    def activation_map(self, array: np.ndarray) -> tuple[float, np.ndarray]:
        """(logit, class activation map) for one preprocessed cell."""
        return self.network.activation_map(array)

    def probabilities(self, arrays: np.ndarray) -> np.ndarray:
        return calibrated_probability(self.logits(arrays), self.card.temperature)

    def verdict(self, probability: float, *, from_field: bool = False) -> CellClassification:
        """from_field: a chip cut from a field photograph, judged at the card's field threshold and band."""
        low, high = self.card.field_uncertain_band if from_field else self.card.uncertain_band
        threshold = self.card.field_threshold if from_field else self.card.threshold
        return CellClassification(
            probability=float(probability),
            label=PARASITIZED if probability >= threshold else UNINFECTED,
            uncertain=bool(low <= probability <= high),
            model_version=self.card.version,
        )

    # -- encoded images ------------------------------------------------------------------------------
    def _prepare(self, data: bytes) -> np.ndarray | CellFailure:
        # uint8 here, float for the whole batch at once: the same values as prepare_cell, less time under the GIL.
        try:
            return prepare_cell_uint8(data, self.card.input_size)
        except CellImageError as exc:
            return CellFailure(error=str(exc))

    def classify(
        self, images: Sequence[bytes], from_field: Sequence[bool] | None = None
    ) -> list[CellClassification | CellFailure]:
        """Classify encoded images; a bad image becomes a CellFailure without affecting the others.

        from_field: per image, whether it is a chip cut from a field photograph (judged at the field threshold).
        """
        from_field = from_field if from_field is not None else [False] * len(images)
        results: list[CellClassification | CellFailure | None] = [None] * len(images)
        # Every image is handed to the decoding threads at once, so they decode the next batch while the
        # interpreter (which releases the GIL) runs on this one.
        pending = [self._pool.submit(self._prepare, data) for data in images]
        for start in range(0, len(images), self.batch_size):
            chunk = [future.result() for future in pending[start : start + self.batch_size]]
            good = [i for i, item in enumerate(chunk) if isinstance(item, np.ndarray)]
            for i, item in enumerate(chunk):
                if isinstance(item, CellFailure):
                    results[start + i] = item
            if good:
                batch = to_network_input(np.stack([chunk[i] for i in good]))
                probabilities = self.probabilities(batch)
                for i, probability in zip(good, probabilities, strict=True):
                    results[start + i] = self.verdict(probability, from_field=from_field[start + i])
        return results  # type: ignore[return-value]


_engine: CellClassifier | None = None
_engine_lock = threading.Lock()


def get_classifier(model_dir: str | Path | None = None) -> CellClassifier:
    """This process's engine, loaded once."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = CellClassifier(load_model_card(model_dir or served_model_dir()))
        return _engine
