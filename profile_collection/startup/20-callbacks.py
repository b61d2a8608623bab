"""Live analysis: ``live`` (a ``LiveEnhancer`` or ``None``) and ``publisher`` (0MQ or ``None``).

- ``LOWDOSE_ZMQ_PUBLISH=host:port``: publish every document (as JSON, not pickle) to a
  ``bluesky-0MQ-proxy`` (its input port), for ``lowdose-bluesky worker`` on another machine.
- ``LOWDOSE_LIVE=on|off``: run ``LiveEnhancer`` in this process; default ``on``, or ``off``
  when documents are published (the remote worker does the analysis).
- ``LOWDOSE_LIVE_ARCH`` (``unet``), ``LOWDOSE_LIVE_EPOCHS`` (``30``), ``LOWDOSE_LIVE_DEVICE``
  (``auto``: CUDA when present), ``LOWDOSE_LIVE_PRETRAINED`` (a result uid or checkpoint path
  to fine-tune), ``LOWDOSE_LIVE_METHOD`` (``auto``; ``supervised``, ``noise2inverse`` or
  ``hybrid``), ``LOWDOSE_LIVE_N2I_SECONDS`` (``40``: Noise2Inverse training after each scan).

``live.wait()`` blocks until the last run's result is stored;
``lowdose_bluesky.results(client, uid)`` reads it back.
"""

import os

_ON, _OFF = ("on", "1", "true", "yes"), ("off", "0", "false", "no")

publisher = None
_zmq_address = (os.environ.get("LOWDOSE_ZMQ_PUBLISH") or "").strip()
if _zmq_address:
    # documents go out as JSON: the worker never unpickles what it receives
    from lowdose_bluesky.callbacks.remote import make_publisher

    publisher = make_publisher(_zmq_address)
    RE.subscribe(publisher)  # noqa: F821 (00-base.py)

_live_flag = (os.environ.get("LOWDOSE_LIVE") or ("off" if publisher else "on")).strip().lower()
if _live_flag not in _ON + _OFF:
    raise ValueError(f"LOWDOSE_LIVE must be one of {_ON + _OFF}, got {_live_flag!r}")

live = None
if _live_flag in _ON:
    from lowdose_bluesky.callbacks import LiveEnhancer

    _epochs = os.environ.get("LOWDOSE_LIVE_EPOCHS") or "30"
    if not _epochs.isdigit():
        raise ValueError(f"LOWDOSE_LIVE_EPOCHS must be a positive integer, got {_epochs!r}")
    _n2i_seconds = float(os.environ.get("LOWDOSE_LIVE_N2I_SECONDS") or "40")
    live = LiveEnhancer(client,  # noqa: F821 (00-base.py)
                        method=os.environ.get("LOWDOSE_LIVE_METHOD") or "auto",
                        n2i_options={"max_seconds": _n2i_seconds},
                        arch=os.environ.get("LOWDOSE_LIVE_ARCH") or "unet",
                        epochs=int(_epochs),
                        device=os.environ.get("LOWDOSE_LIVE_DEVICE") or "auto",
                        pretrained=os.environ.get("LOWDOSE_LIVE_PRETRAINED") or None,
                        backup_directory=DATA_DIR / "tiled-backup")  # noqa: F821
    RE.subscribe(live)  # noqa: F821 (00-base.py)
