"""Derived results in Tiled: written by the live callback, found by the raw run's uid.

Layout::

    client["results"][<result uid>]          container, spec "LowDoseResult"
        metadata: parent_uid, status ("complete" | "incomplete" | "failed"), error,
                  model {arch, config, history}, timings, center, version, ...
        enhanced            (N, H, W) float32  enhanced transmission of the rotation
        reconstruction      (Z, X, X) float32  from the enhanced projections
        reconstruction_raw  (Z, X, X) float32  from the raw short-exposure projections
        checkpoint          (nbytes,) uint8    the trained model (safetensors bytes)
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from tiled.queries import Key

from .tiled import RESULTS, ensure_container

__all__ = [
    "CALIBRATION_KIND",
    "RESULT_SPEC",
    "RUNNING",
    "UPLOAD_BLOCK_BYTES",
    "LowDoseResult",
    "find_calibration",
    "is_result_uid",
    "result_by_uid",
    "results",
    "write_result",
]

RESULT_SPEC = "LowDoseResult"
#: ``kind`` of a knife-edge calibration result (:func:`find_calibration`).
CALIBRATION_KIND = "knife_edge_calibration"
_UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_result_uid(text: str) -> bool:
    """Whether ``text`` has the form of a result uid (``str(uuid.uuid4())``, 8-4-4-4-12 hex)."""
    return isinstance(text, str) and _UID.fullmatch(text.lower()) is not None


#: Status of a result whose arrays are still being written (or whose writing broke off).
WRITING = "writing"
#: Status of a result whose analysis is under way (written by the live engine).
RUNNING = "running"
#: Arrays larger than this are uploaded in blocks of about this size along their first
#: axis, one request at a time: tiled's own ``write_array`` sends ~100 MB blocks
#: concurrently, and each block in flight costs about five copies of itself in this
#: process when the server is embedded (1.6 GiB above the array for a 450 MiB stack,
#: 0.5 GiB in 16 MiB blocks).
UPLOAD_BLOCK_BYTES = 16 * 2**20


def write_result(client: Any, *, parent_uid: str, metadata: dict[str, Any],
                 arrays: dict[str, np.ndarray] | None = None,
                 checkpoint: bytes | None = None, uid: str | None = None) -> str:
    """Store one derived result under ``client["results"]``; return its uid.

    The node carries status ``"writing"`` until every array is written, and only
    then its own status, so a write that breaks off never leaves a result that looks
    complete. ``uid`` restores a result under its original uid (a partial copy
    with that uid is replaced).
    """
    container = ensure_container(client, RESULTS)
    uid = str(uuid.uuid4()) if uid is None else uid
    if uid in container:
        container[uid].delete(recursive=True, external_only=False)
    md = {"parent_uid": parent_uid, **metadata, "uid": uid}
    node = container.create_container(uid, metadata={**md, "status": WRITING},
                                      specs=[RESULT_SPEC])
    for key, array in (arrays or {}).items():
        _write_array(node, key, np.ascontiguousarray(array))
    if checkpoint is not None:
        node.write_array(np.frombuffer(checkpoint, dtype=np.uint8), key="checkpoint",
                         metadata={"format": "safetensors"})
    node.replace_metadata(metadata=md)
    return uid


def _write_array(node: Any, key: str, array: np.ndarray) -> None:
    """Write ``array`` as ``node[key]``, in blocks of ``UPLOAD_BLOCK_BYTES`` one at a time."""
    row = array[0].nbytes if array.ndim and array.shape[0] else 0
    if array.ndim < 2 or array.nbytes <= UPLOAD_BLOCK_BYTES or row == 0:
        node.write_array(array, key=key)
        return
    from tiled.structures.array import ArrayStructure, BuiltinDtype
    from tiled.structures.core import StructureFamily
    from tiled.structures.data_source import DataSource

    rows = max(1, UPLOAD_BLOCK_BYTES // row)
    starts = range(0, array.shape[0], rows)
    chunks = (tuple(min(rows, array.shape[0] - i) for i in starts),
              *((n,) for n in array.shape[1:]))
    structure = ArrayStructure(shape=array.shape, chunks=chunks,
                               data_type=BuiltinDtype.from_numpy_dtype(array.dtype))
    target = node.new(StructureFamily.array,
                      [DataSource(structure=structure, structure_family=StructureFamily.array)],
                      key=key, metadata={}, specs=[])
    rest = (0,) * (array.ndim - 1)
    for block, start in enumerate(starts):
        target.write_block(array[start:start + rows], block=(block, *rest))


@dataclass(frozen=True)
class LowDoseResult:
    """A stored result: arrays are read from Tiled on access."""

    node: Any

    @property
    def uid(self) -> str:
        """Uid of the result."""
        return self.node.metadata["uid"]

    @property
    def metadata(self) -> dict[str, Any]:
        """Provenance: parent uid, model, training record, timings, status."""
        return dict(self.node.metadata)

    @property
    def status(self) -> str:
        """``"complete"``, ``"incomplete"``, ``"failed"`` or ``"running"``."""
        return self.node.metadata["status"]

    def _array(self, key: str) -> np.ndarray:
        if key not in self.node:
            raise KeyError(f"result {self.uid} (status {self.status!r}) has no {key!r} array")
        return self.node[key].read()

    @property
    def enhanced(self) -> np.ndarray:
        """Enhanced projections ``(N, H, W)`` (while running: the frames enhanced so far)."""
        return self._array("enhanced")

    @property
    def reconstruction(self) -> np.ndarray:
        """Reconstruction from the enhanced projections ``(Z, X, X)``."""
        return self._array("reconstruction")

    @property
    def reconstruction_raw(self) -> np.ndarray:
        """Reconstruction from the raw projections ``(Z, X, X)``."""
        return self._array("reconstruction_raw")

    @property
    def maps_raw(self) -> np.ndarray:
        """Element maps of an XRF run from the short dwell ``(elements, H, W)``."""
        return self._array("maps_raw")

    @property
    def maps(self) -> np.ndarray:
        """Enhanced element maps of an XRF run ``(elements, H, W)``."""
        return self._array("maps")

    @property
    def phase(self) -> np.ndarray:
        """Stitched phase (rad) of a ptychography run ``(H, W)`` on the object's grid
        (NaN where no pattern reached; while running: the ``phase_live`` image)."""
        if self.status == "running" and "phase" not in self.node:
            return self._array("phase_live")[0]
        return self._array("phase")

    @property
    def amplitude(self) -> np.ndarray:
        """Stitched amplitude of a ptychography run ``(H, W)`` (NaN where no pattern reached)."""
        return self._array("amplitude")

    @property
    def phase_iterative(self) -> np.ndarray:
        """Phase of the iterative reconstruction of the dense field ``(H, W)`` (NaN outside)."""
        return self._array("phase_iterative")

    @property
    def phase_refined(self) -> np.ndarray:
        """Phase of the sparse field refined by pty-chi from the learned image ``(H, W)``
        (NaN where no pattern reached; only with the recipe's ``refine_epochs``)."""
        return self._array("phase_refined")

    @property
    def super_resolved(self) -> np.ndarray:
        """Super-resolved frames ``(N, fH, fW)`` of a super-resolution run (while running:
        the frames done so far)."""
        return self._array("super_resolved")

    @property
    def psf_sigma_px(self) -> float:
        """Gaussian PSF sigma in camera pixels fitted by a knife-edge calibration."""
        if "psf_sigma_px" not in self.node.metadata:
            raise KeyError(f"result {self.uid} (status {self.status!r}) is not a knife-edge "
                           "calibration: it has no psf_sigma_px")
        return float(self.node.metadata["psf_sigma_px"])

    @property
    def checkpoint(self) -> bytes:
        """The trained model's checkpoint bytes (``Enhancer.from_bytes``)."""
        return self._array("checkpoint").tobytes()


def results(client: Any, raw_uid: str, *, status: str | None = None) -> LowDoseResult:
    """The newest finished derived result of the raw run ``raw_uid``.

    Finished: ``"complete"``, ``"incomplete"`` or ``"failed"``. The result of an
    analysis under way has status ``"running"`` (its ``enhanced`` array grows as frames
    are enhanced, and ``metadata["progress"]`` says how far it is): ask for it with
    ``status="running"``.

    Raises
    ------
    KeyError
        If there is no result for that run (with that status).
    """
    if RESULTS not in client:
        raise KeyError(f"no results stored yet (no {RESULTS!r} container in Tiled)")
    found = client[RESULTS].search(Key("parent_uid") == raw_uid)
    if status is not None:
        found = found.search(Key("status") == status)
    else:
        found = found.search(Key("status") != WRITING).search(Key("status") != RUNNING)
    nodes = list(found.values())
    if not nodes:
        raise KeyError(f"no result for raw run {raw_uid!r}"
                       + (f" with status {status!r}" if status else ""))
    nodes.sort(key=lambda n: n.metadata.get("finished", 0.0))
    return LowDoseResult(nodes[-1])


def find_calibration(client: Any, detector: str, *, binning: int = 1) -> LowDoseResult:
    """The newest complete knife-edge calibration of camera ``detector`` at ``binning``.

    Raises
    ------
    KeyError
        If Tiled holds none (saying how to make one).
    """
    found = None
    if RESULTS in client:
        found = (client[RESULTS].search(Key("kind") == CALIBRATION_KIND)
                 .search(Key("status") == "complete").search(Key("detector") == detector)
                 .search(Key("binning") == int(binning)))
    nodes = [] if found is None else list(found.values())
    if not nodes:
        raise KeyError(f"no complete knife-edge calibration of camera {detector!r} at binning "
                       f"{binning} in Tiled: run knife_edge_plan with that camera first, or "
                       "name a calibration result uid")
    nodes.sort(key=lambda n: n.metadata.get("finished", 0.0))
    return LowDoseResult(nodes[-1])


def result_by_uid(client: Any, uid: str) -> LowDoseResult:
    """A stored result by its own uid."""
    try:
        return LowDoseResult(client[RESULTS][uid])
    except KeyError:
        raise KeyError(f"no stored result with uid {uid!r}") from None
