"""Data directory, RunEngine, Tiled client and TiledWriter of the lowdose profile.

Runs under IPython (``ipython --profile-dir=profile_collection``) and under the Bluesky
queue server (``start-re-manager --startup-dir profile_collection/startup``), which
executes these files in one plain Python namespace. Settings come from environment
variables (see ``profile_collection/README.md``):

- ``LOWDOSE_DATA_DIR``: frames (``frames/``), embedded Tiled catalog (``tiled/``),
  RunEngine metadata (``runengine-md/``); default ``~/lowdose_data``.
- ``LOWDOSE_TILED_URI``: use this Tiled server instead of the embedded one; its API key
  comes from the URI (``?api_key=...``) or ``LOWDOSE_TILED_API_KEY``.
- ``LOWDOSE_READABLE_STORAGE``: more directories (``os.pathsep``-separated) that the
  embedded server may read, e.g. where an EPICS detector writes its files.
"""

import logging
import os
from pathlib import Path

from bluesky import RunEngine

from lowdose_bluesky.storage import RAW, connect, subscribe_writer

logging.getLogger("lowdose_bluesky").setLevel(logging.INFO)

DATA_DIR = Path(os.environ.get("LOWDOSE_DATA_DIR") or "~/lowdose_data").expanduser().resolve()
FRAMES_DIR = DATA_DIR / "frames"
FRAMES_DIR.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- RunEngine
# Made before the devices (10-devices.py): ophyd-async devices connect on its event loop.
RE = RunEngine()
try:
    from bluesky.utils import PersistentDict

    # scan_id and user metadata (RE.md["proposal"] = ...) survive restarts. zict keeps
    # the files safe for one process at a time: give a second session (IPython next to a
    # queue server) its own LOWDOSE_DATA_DIR.
    RE.md = PersistentDict(str(DATA_DIR / "runengine-md"))
except RuntimeError:  # zict is not installed: metadata lives as long as the session
    print("lowdose profile: RE.md is not persistent (pip install zict to keep it)")

# ---------------------------------------------------------------- Tiled
TILED_URI = os.environ.get("LOWDOSE_TILED_URI") or None
if TILED_URI is not None:
    client = connect(TILED_URI)  # API key from the URI or LOWDOSE_TILED_API_KEY
else:
    _readable = [FRAMES_DIR] + [
        Path(p).expanduser()
        for p in os.environ.get("LOWDOSE_READABLE_STORAGE", "").split(os.pathsep) if p.strip()]
    client = connect(directory=DATA_DIR / "tiled", readable_storage=_readable)
    del _readable

# Every run goes to client["raw"]; a run the server refuses is kept as JSON lines here.
subscribe_writer(RE, client, backup_directory=DATA_DIR / "tiled-backup")
raw = client[RAW]
