"""Iterative phase retrieval with pty-chi (PyPI ``ptychi``, Apache-2.0), the known probe fixed.

pty-chi and torch are imported only when a reconstruction is built (the
``ptycho`` extra: ``pip install lowdose_bluesky[ptycho]``).

Conventions translated here (checked against pty-chi 2.2.0's forward model,
see ``tests/ptycho/test_iterative.py``):

* pty-chi places the window of a position ``p`` (relative to the origin
  ``o = object_options.position_origin_coords``) with its centre at pixel
  ``round(p) + o``, i.e. its top-left corner at ``round(p) + o - (h - 1) / 2``,
  and applies the fractional part ``p - round(p)`` as a sub-pixel shift of the
  probe. With the origin set to ``((h - 1) / 2, (w - 1) / 2)``
  (``ObjectPosOriginCoordsMethods.SPECIFIED``) its positions are exactly our
  top-left corners, for odd and even probe sizes alike.
* pty-chi's far field is the unnormalised FFT, ``|fft2(P O)|^2``; our patterns
  are ``photons * |fft2(P O, norm="ortho")|^2`` with ``sum |P|^2 = 1``, so the
  probe handed over is ``P * sqrt(photons / (h * w))``.
* Our patterns have zero frequency at the centre (``fftshift``); they are
  handed over ``ifftshift``-ed with ``data_options.fft_shift = False``, which is
  also right for odd pattern sizes (pty-chi's own ``fft_shift`` applies
  ``fftshift``, the inverse of ``ifftshift`` only for even sizes).
* The object buffer is the object padded by :data:`MARGIN` pixels on each
  side (never illuminated, initialised to 1), so that no window reaches the
  buffer's edge; the result is cropped back to the object grid.

pty-chi sets torch's default device and dtype and, with a seed, reseeds the
global numpy, ``random`` and torch generators; these are restored after each
build and run. In environments whose torchvision does not import with the
installed torch, pty-chi is imported with a minimal stand-in for the one
torchvision name it imports (``torchvision.transforms.GaussianBlur``), used
only by one of its random-initialisation helpers.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import random
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from lowdose_bluesky.ptycho.objects import check_object
from lowdose_bluesky.ptycho.positions import check_positions, window_corners
from lowdose_bluesky.ptycho.probe import check_probe

__all__ = ["ALGORITHMS", "MARGIN", "IterativeReconstructor", "IterativeResult", "reconstruct"]

ALGORITHMS: tuple[str, ...] = ("lsqml", "epie", "rpie", "dm")
"""Algorithm names accepted by :func:`reconstruct` (pty-chi's LSQML, ePIE, rPIE, DM)."""

_OPTIONS_CLASS = {"lsqml": "LSQMLOptions", "epie": "EPIEOptions", "rpie": "RPIEOptions",
                  "dm": "DMOptions"}

MARGIN = 2
"""Pixels of padding around the object in pty-chi's buffer."""

# Warnings pty-chi 2.2.0 raises from its own code during a reconstruction; they are
# about its internals, not about the input, and are silenced only around its calls.
_PTYCHI_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    ("Converting a tensor with requires_grad=True to a scalar", UserWarning),
)


@dataclass(frozen=True)
class IterativeResult:
    """Outcome of an iterative reconstruction.

    Attributes
    ----------
    obj
        Complex object ``(H, W)`` on the object grid (``complex128``); pixels
        never illuminated keep their initial value (1 by default).
    seconds
        Wall time of building and running the reconstruction (cumulative over
        :meth:`IterativeReconstructor.run` calls), without importing pty-chi.
    algorithm
        Name of the algorithm (one of :data:`ALGORITHMS`).
    epochs
        Number of epochs run in total.
    probe
        Probe at the end, normalised to ``sum |P|^2 = 1`` (the input probe
        unless it was refined).
    losses
        pty-chi's loss after each epoch.
    """

    obj: np.ndarray
    seconds: float
    algorithm: str
    epochs: int
    probe: np.ndarray
    losses: tuple[float, ...] = ()


class _GaussianBlurStandIn:
    """Minimal ``torchvision.transforms.GaussianBlur``: separable, reflect padding."""

    def __init__(self, kernel_size: int | Sequence[int],
                 sigma: float | Sequence[float] = (0.1, 2.0)) -> None:
        sizes = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.kernel_size = tuple(int(k) for k in sizes)
        if any(k <= 0 or k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"kernel_size must be positive and odd, got {kernel_size!r}")
        if isinstance(sigma, int | float):
            self.sigma = (float(sigma), float(sigma))
        else:
            self.sigma = (float(sigma[0]), float(sigma[1]))

    def __call__(self, img: Any) -> Any:
        import torch

        low, high = self.sigma
        sigma = low if low == high else float(torch.empty(1).uniform_(low, high).item())
        out = img
        for axis, size in ((-1, self.kernel_size[0]), (-2, self.kernel_size[1])):
            x = torch.arange(size, dtype=img.dtype, device=img.device) - (size - 1) / 2
            kernel = torch.exp(-0.5 * (x / sigma) ** 2)
            kernel = kernel / kernel.sum()
            shape = [1] * img.ndim
            shape[axis] = size
            pad = [0, 0, 0, 0]
            pad[0 if axis == -1 else 2] = pad[1 if axis == -1 else 3] = size // 2
            flat = out.reshape(-1, 1, *out.shape[-2:])
            padded = torch.nn.functional.pad(flat, pad, mode="reflect")
            weight = kernel.reshape(1, 1, *shape[-2:])
            out = torch.nn.functional.conv2d(padded, weight).reshape(out.shape)
        return out


def _torchvision_imports() -> bool:
    try:
        importlib.import_module("torchvision.transforms")
    except Exception:  # e.g. RuntimeError "operator torchvision::nms does not exist"
        return False
    return True


@functools.cache
def _ptychi() -> tuple[Any, Any]:
    """Import pty-chi; returns ``(ptychi.api, PtychographyTask)``."""
    try:
        importlib.import_module("torch")
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "iterative reconstruction needs torch and pty-chi: "
            "pip install 'lowdose_bluesky[ptycho]'"
        ) from error
    if "ptychi" in sys.modules or _torchvision_imports():
        stand_in = None
    else:
        transforms = types.ModuleType("torchvision.transforms")
        transforms.GaussianBlur = _GaussianBlurStandIn  # type: ignore[attr-defined]
        package = types.ModuleType("torchvision")
        package.transforms = transforms  # type: ignore[attr-defined]
        stand_in = {"torchvision": package, "torchvision.transforms": transforms}
    saved = {name: sys.modules.get(name) for name in stand_in or ()}
    try:
        if stand_in is not None:
            sys.modules.update(stand_in)
        try:
            api = importlib.import_module("ptychi.api")
            task_module = importlib.import_module("ptychi.api.task")
        except ImportError as error:
            raise ImportError(
                "iterative reconstruction needs pty-chi: pip install 'lowdose_bluesky[ptycho]'"
            ) from error
    finally:
        # The stand-in serves pty-chi's import only; nothing else sees it afterwards.
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return api, task_module.PtychographyTask


@contextlib.contextmanager
def _torch_state(num_threads: int | None) -> Iterator[None]:
    """Restore torch's default device/dtype/threads and the global generators afterwards."""
    import torch

    holder = getattr(torch, "_GLOBAL_DEVICE_CONTEXT", None)
    context = getattr(holder, "device_context", None)
    device = getattr(context, "device", None)
    dtype = torch.get_default_dtype()
    threads = torch.get_num_threads()
    torch_rng = torch.get_rng_state()
    # pty-chi reseeds numpy's legacy global generator: put its state back afterwards.
    numpy_rng = np.random.get_state()  # noqa: NPY002
    python_rng = random.getstate()
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with warnings.catch_warnings():
            for message, category in _PTYCHI_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        torch.set_default_device(device)
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)
        torch.set_rng_state(torch_rng)
        np.random.set_state(numpy_rng)  # noqa: NPY002
        random.setstate(python_rng)


class IterativeReconstructor:
    """A pty-chi reconstruction that can be continued epoch by epoch (live use).

    Parameters
    ----------
    patterns
        Diffraction patterns ``(N, h, w)`` (counts), zero frequency at the
        centre, as from :func:`lowdose_bluesky.ptycho.diffraction_patterns`.
    positions
        ``(N, 2)`` ``(y, x)`` top-left corners of the probe window on the object grid.
    probe
        Complex probe ``(h, w)``; any scale (it is normalised to unit energy).
    obj_shape
        ``(H, W)`` of the object grid.
    algorithm
        One of :data:`ALGORITHMS`.
    seed
        Seed of pty-chi's random choices (mini-batch order).
    batch_size
        Positions per mini-batch; default ``max(1, round(N / 4))`` for LSQML,
        1 for ePIE and rPIE. Smaller batches give more updates per epoch and
        cost more time per epoch. DM updates all positions at once: leave it ``None``.
    photons
        Expected total count per pattern for a clear object (the ``photons``
        of the forward model). Default: the mean total count of the patterns,
        exact for a weakly absorbing object; with a strongly absorbing one the
        reconstructed amplitude comes out scaled by a constant.
    refine_probe
        Let pty-chi refine the probe too (default: the probe is known and fixed,
        and the object keeps its absolute amplitude).
    integer_positions
        Round the positions half up to whole pixels as the forward model does
        (default). ``False`` keeps fractional positions, which pty-chi applies
        as sub-pixel shifts of the probe (measured positions).
    num_threads
        torch threads during build and run (restored afterwards); ``None``
        leaves torch's setting. On a busy machine, 1 avoids oversubscription.
    device
        ``"cpu"`` or ``"gpu"``.
    initial_object
        Starting object ``(H, W)`` (complex, amplitude <= 1); default ones (clear).
    configure
        Optional function called with pty-chi's options object before the
        task is built, to change any further option.

    Attributes
    ----------
    options
        pty-chi's options object, as the task was built with.
    epochs, seconds
        Epochs run so far and the wall time spent in pty-chi.
    """

    def __init__(self, patterns: ArrayLike, positions: ArrayLike, probe: ArrayLike,
                 obj_shape: Sequence[int], *, algorithm: str = "lsqml", seed: int | None = 0,
                 batch_size: int | None = None, photons: float | None = None,
                 refine_probe: bool = False, integer_positions: bool = True,
                 num_threads: int | None = None, device: Literal["cpu", "gpu"] = "cpu",
                 initial_object: ArrayLike | None = None,
                 configure: Callable[[Any], None] | None = None) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        if num_threads is not None and (int(num_threads) != num_threads or num_threads < 1):
            raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
        data = np.asarray(patterns)
        if data.ndim != 3 or data.shape[0] < 1:
            raise ValueError(f"patterns must be an (N, h, w) array with N >= 1, got {data.shape}")
        if not np.all(np.isfinite(data)) or np.any(data < 0):
            raise ValueError("patterns must be finite and non-negative")
        p = check_probe(probe, data.shape[1:])
        try:
            height, width = (int(s) for s in obj_shape)
        except (TypeError, ValueError):
            raise ValueError(f"obj_shape must be two integers, got {obj_shape!r}") from None
        points = check_positions(positions, (height, width), p.shape)
        start_object = np.ones((height + 2 * MARGIN, width + 2 * MARGIN), np.complex64)
        if initial_object is not None:
            guess = check_object(initial_object)
            if guess.shape != (height, width):
                raise ValueError(
                    f"initial_object shape {guess.shape} must equal obj_shape {(height, width)}"
                )
            start_object[MARGIN:MARGIN + height, MARGIN:MARGIN + width] = guess
        if len(points) != len(data):
            raise ValueError(
                f"got {len(points)} positions for {len(data)} patterns: they must be equal"
            )
        n = len(points)
        if algorithm == "dm":
            if batch_size is not None:
                raise ValueError(
                    f"batch_size must be None for 'dm' (it updates all positions at once), "
                    f"got {batch_size!r}"
                )
        elif batch_size is None:
            batch_size = max(1, round(n / 4)) if algorithm == "lsqml" else 1
        if batch_size is not None and (int(batch_size) != batch_size or not 1 <= batch_size <= n):
            raise ValueError(f"batch_size must be an integer in [1, {n}], got {batch_size!r}")
        if photons is None:
            photons = float(data.sum(axis=(1, 2)).mean())
        if not (np.isfinite(photons) and photons > 0):
            raise ValueError(
                f"photons must be a positive finite count per pattern, got {photons!r}"
            )

        self.algorithm = algorithm
        self.obj_shape: tuple[int, int] = (height, width)
        self.num_threads = None if num_threads is None else int(num_threads)
        self.epochs = 0
        self.seconds = 0.0
        self._losses: list[float] = []

        api, task_class = _ptychi()
        h, w = p.shape
        p = p / np.sqrt(np.sum(np.abs(p) ** 2))
        self._probe_scale = math.sqrt(photons / (h * w))
        corners = (window_corners(points) if integer_positions else points) + MARGIN

        options = getattr(api, _OPTIONS_CLASS[algorithm])()
        options.data_options.fft_shift = False
        rec = options.reconstructor_options
        rec.default_device = api.Devices.CPU if device == "cpu" else api.Devices.GPU
        if batch_size is not None:
            rec.batch_size = int(batch_size)
        if algorithm == "dm":
            # DM records its own error as the loss; asking for another metric only warns.
            rec.displayed_loss_function = None
        rec.random_seed = seed
        if hasattr(rec, "rescale_probe_intensity_in_first_epoch"):
            # The probe's scale is known: every epoch, the first included, updates the object.
            rec.rescale_probe_intensity_in_first_epoch = False
        options.probe_options.optimizable = bool(refine_probe)
        if not refine_probe:
            # With a fixed probe, keep the object's absolute amplitude.
            options.object_options.remove_object_probe_ambiguity.enabled = False
        options.object_options.determine_position_origin_coords_by = (
            api.ObjectPosOriginCoordsMethods.SPECIFIED
        )
        options.object_options.position_origin_coords = np.array([(h - 1) / 2, (w - 1) / 2])
        if configure is not None:
            configure(options)
        self.options = options

        start = time.perf_counter()
        with _torch_state(self.num_threads):
            self._task = task_class(
                options,
                diffraction_data=np.fft.ifftshift(data, axes=(-2, -1)).astype(np.float32),
                object_data=start_object[None],
                probe_data=(p * self._probe_scale)[None, None].astype(np.complex64),
                probe_position_x_px=corners[:, 1].astype(np.float64),
                probe_position_y_px=corners[:, 0].astype(np.float64),
            )
            self._device = self._torch_default_device()
        self.seconds += time.perf_counter() - start

    @staticmethod
    def _torch_default_device() -> Any:
        import torch

        return torch.get_default_device()

    def run(self, epochs: int) -> IterativeResult:
        """Run ``epochs`` more epochs and return the result so far.

        Parameters
        ----------
        epochs
            Number of epochs to add (>= 1).

        Returns
        -------
        IterativeResult
            The object after all epochs run so far.
        """
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        import torch

        start = time.perf_counter()
        with _torch_state(self.num_threads):
            # pty-chi builds tensors on torch's default device and dtype during the run.
            torch.set_default_device(self._device)
            torch.set_default_dtype(torch.float32)
            self._task.run(int(epochs))
        self.seconds += time.perf_counter() - start
        self.epochs += int(epochs)
        table = getattr(getattr(self._task.reconstructor, "loss_tracker", None), "table", None)
        if table is not None and "loss" in table:
            self._losses = [float(v) for v in table["loss"]]
        return self.result()

    def model_patterns(self) -> np.ndarray:
        """Predicted intensities of pty-chi's model for the current object and probe.

        Returns
        -------
        numpy.ndarray
            ``(N, h, w)`` ``float64``, zero frequency at the centre, on the
            scale of the patterns (comparable with
            :func:`lowdose_bluesky.ptycho.expected_intensity`).
        """
        import torch

        model = self._task.reconstructor.forward_model
        n = len(self._task.reconstructor.parameter_group.probe_positions.data)
        with _torch_state(self.num_threads), torch.no_grad():
            torch.set_default_device(self._device)
            torch.set_default_dtype(torch.float32)
            predicted = model(torch.arange(n)).detach().cpu().numpy()
        return np.fft.fftshift(predicted.astype(np.float64), axes=(-2, -1))

    def result(self) -> IterativeResult:
        """The current object and probe.

        Returns
        -------
        IterativeResult
            The object after the epochs run so far (none: the initial object).
        """
        buffer = self._task.get_data_to_cpu("object", as_numpy=True)[0]
        obj = buffer[MARGIN:MARGIN + self.obj_shape[0], MARGIN:MARGIN + self.obj_shape[1]]
        probe = self._task.get_data_to_cpu("probe", as_numpy=True)[0, 0].astype(np.complex128)
        return IterativeResult(
            obj=obj.astype(np.complex128),
            seconds=self.seconds,
            algorithm=self.algorithm,
            epochs=self.epochs,
            probe=probe / np.sqrt(np.sum(np.abs(probe) ** 2)),
            losses=tuple(self._losses),
        )


def reconstruct(patterns: ArrayLike, positions: ArrayLike, probe: ArrayLike,
                obj_shape: Sequence[int], *, algorithm: str = "lsqml", epochs: int = 50,
                seed: int | None = 0, batch_size: int | None = None,
                photons: float | None = None, refine_probe: bool = False,
                integer_positions: bool = True, num_threads: int | None = None,
                device: Literal["cpu", "gpu"] = "cpu", initial_object: ArrayLike | None = None,
                configure: Callable[[Any], None] | None = None) -> IterativeResult:
    """Reconstruct the object from diffraction patterns with pty-chi.

    The object starts as ones (clear, unless ``initial_object``) and the known
    probe stays fixed unless ``refine_probe``.

    Parameters
    ----------
    patterns
        Diffraction patterns ``(N, h, w)``, zero frequency at the centre.
    positions
        ``(N, 2)`` ``(y, x)`` top-left corners of the probe window.
    probe
        Complex probe ``(h, w)``.
    obj_shape
        ``(H, W)`` of the object grid.
    algorithm
        One of :data:`ALGORITHMS`.
    epochs
        Number of epochs to run (>= 1).
    seed, batch_size, photons, refine_probe, integer_positions, num_threads, device, \
initial_object, configure
        As for :class:`IterativeReconstructor`.

    Returns
    -------
    IterativeResult
        The object on the ``obj_shape`` grid, timing and losses.

    Examples
    --------
    >>> result = reconstruct(patterns, positions, probe, obj.shape, epochs=30)  # doctest: +SKIP
    >>> phase = np.angle(result.obj)  # doctest: +SKIP
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    reconstructor = IterativeReconstructor(
        patterns, positions, probe, obj_shape, algorithm=algorithm, seed=seed,
        batch_size=batch_size, photons=photons, refine_probe=refine_probe,
        integer_positions=integer_positions, num_threads=num_threads, device=device,
        initial_object=initial_object, configure=configure,
    )
    return reconstructor.run(epochs)
