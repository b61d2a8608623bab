"""PV prefixes of an EPICS TXM, read from a YAML file, a dict or environment variables.

The configuration names every process variable the EPICS devices connect to, and the
directories the AreaDetector HDF5 plugin writes to. It is validated before any
device is built: each error names the offending key, the value received and what is
allowed. See ``example_pvs.yaml`` (next to this module) for a commented example.

Environment variables (used by :func:`load_epics_config` when no source is given):

========================================  ==================================================
``LOWDOSE_EPICS_CONFIG``                  path of a YAML file (then no ``LOWDOSE_PV_*``)
``LOWDOSE_PV_CAMERA``                     AreaDetector prefix (``cam1:``/``HDF1:`` appended)
``LOWDOSE_PV_ROTATION``                   rotation motor record
``LOWDOSE_PV_SAMPLE_X``                   sample translation motor record (optional)
``LOWDOSE_PV_SHUTTER``                    shutter prefix: ``<prefix>Open``/``<prefix>Close``
``LOWDOSE_PV_SHUTTER_STATUS``             shutter status PV (needed with the shutter)
``LOWDOSE_CAMERA_WRITE_PATH``             HDF5 directory as the IOC sees it (strftime codes)
``LOWDOSE_CAMERA_READ_PATH``              the same directory as this computer sees it
``LOWDOSE_CAMERA_ROOT``                   non-semantic root of the paths (default ``/``)
========================================  ==================================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

__all__ = [
    "ENV_CONFIG_FILE",
    "ENV_VARIABLES",
    "CameraConfig",
    "EpicsConfigError",
    "EpicsTXMConfig",
    "MotorConfig",
    "ShutterConfig",
    "load_epics_config",
]

#: Environment variable naming a YAML configuration file.
ENV_CONFIG_FILE = "LOWDOSE_EPICS_CONFIG"

#: Environment variables and the configuration key each one fills.
ENV_VARIABLES: dict[str, tuple[str, str]] = {
    "LOWDOSE_PV_CAMERA": ("camera", "prefix"),
    "LOWDOSE_CAMERA_WRITE_PATH": ("camera", "write_path_template"),
    "LOWDOSE_CAMERA_READ_PATH": ("camera", "read_path_template"),
    "LOWDOSE_CAMERA_ROOT": ("camera", "root"),
    "LOWDOSE_PV_ROTATION": ("rotation", "prefix"),
    "LOWDOSE_PV_SAMPLE_X": ("sample_x", "prefix"),
    "LOWDOSE_PV_SHUTTER": ("shutter", "prefix"),
    "LOWDOSE_PV_SHUTTER_STATUS": ("shutter", "status_pv"),
}

_PV_RE = re.compile(r"^[A-Za-z0-9_\-:.\[\]<>;{}$]+$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EpicsConfigError(ValueError):
    """The EPICS configuration is missing a key or holds a value that is not allowed."""


def _pv(value: str) -> str:
    if not value:
        raise ValueError("must be a non-empty PV name")
    if not _PV_RE.match(value):
        raise ValueError(f"must be an EPICS PV name (letters, digits and _ - : . [ ] < > ; {{ }}"
                         f" $, no spaces), got {value!r}")
    return value


def _motor_record(value: str) -> str:
    value = _pv(value)
    if "." in value:
        record = value.split(".", 1)[0]
        raise ValueError(f"must be the motor record name without a field, e.g. {record!r} "
                         f"rather than {value!r}")
    return value


def _ophyd_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"must be a Python identifier (it prefixes the data keys), got {value!r}")
    return value


PV = Annotated[str, AfterValidator(_pv)]
MotorRecord = Annotated[str, AfterValidator(_motor_record)]
DeviceName = Annotated[str, AfterValidator(_ophyd_name)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CameraConfig(_Section):
    """An AreaDetector camera with an HDF5 plugin.

    Attributes
    ----------
    prefix
        IOC prefix; the driver is at ``<prefix>cam1:``, the HDF5 plugin at ``<prefix>HDF1:``.
    name
        ophyd name; the image data key is ``<name>_image``.
    write_path_template
        Directory the IOC writes to, as the IOC sees it (``strftime`` codes allowed).
    read_path_template
        The same directory as this computer sees it (default: ``write_path_template``).
    root
        Part of the read path that is not semantic (stored as the Resource ``root``).
    path_semantics
        ``"posix"`` or ``"windows"``: how the IOC spells paths.
    readout_time
        Seconds added to the exposure time to give AcquirePeriod.
    """

    prefix: PV
    name: DeviceName = "det"
    write_path_template: str = Field(min_length=1)
    read_path_template: str | None = None
    root: str = "/"
    path_semantics: Literal["posix", "windows"] = "posix"
    readout_time: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _paths(self) -> CameraConfig:
        flavour = PureWindowsPath if self.path_semantics == "windows" else PurePosixPath
        if not flavour(self.write_path_template).is_absolute():
            raise ValueError(f"write_path_template must be an absolute {self.path_semantics} "
                             f"path, got {self.write_path_template!r}")
        root = PurePath(self.root)
        if not root.is_absolute():
            raise ValueError(f"root must be an absolute path, got {self.root!r}")
        read = PurePath(self.read_path_template or self.write_path_template)
        if read.is_absolute() and root != read and root not in read.parents:
            which = "read_path_template" if self.read_path_template else "write_path_template"
            raise ValueError(f"{which} {str(read)!r} must lie under root {self.root!r} "
                             "(the Resource documents store paths relative to root)")
        return self


class MotorConfig(_Section):
    """An EPICS motor record.

    Attributes
    ----------
    prefix
        Record name, without a field (``32idcTXM:ens:c1:m1``, not ``...m1.VAL``).
    name
        ophyd name (the readback's data key).
    settle_time
        Seconds to wait after a move has completed.
    timeout
        Seconds a move may take before it fails (``None``: no limit).
    """

    prefix: MotorRecord
    name: DeviceName
    settle_time: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    timeout: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)


class ShutterConfig(_Section):
    """An APS-style shutter: two command PVs and one status PV.

    Attributes
    ----------
    prefix
        Gives ``open_pv = <prefix>Open`` and ``close_pv = <prefix>Close`` when those are
        not given.
    open_pv, close_pv
        Command PVs (written with ``command_value`` to open or close).
    status_pv
        PV reporting the shutter state.
    name
        ophyd name.
    command_value
        Value written to a command PV.
    open_value, closed_value
        Values of ``status_pv`` when the shutter is open or closed.
    timeout
        Seconds the status PV may take to report the requested state.
    settle_time
        Seconds to wait after the status PV has reported the requested state.
    """

    prefix: PV | None = None
    open_pv: PV | None = None
    close_pv: PV | None = None
    status_pv: PV
    name: DeviceName = "shutter"
    command_value: int = 1
    open_value: int = 1
    closed_value: int = 0
    timeout: float = Field(default=20.0, gt=0.0, allow_inf_nan=False)
    settle_time: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _commands(self) -> ShutterConfig:
        missing = [k for k in ("open_pv", "close_pv") if getattr(self, k) is None]
        if missing and self.prefix is None:
            raise ValueError(f"give either prefix (for <prefix>Open and <prefix>Close) or "
                             f"{' and '.join(missing)}")
        if self.open_value == self.closed_value:
            raise ValueError(f"open_value and closed_value must differ, both are "
                             f"{self.open_value!r}")
        return self

    @property
    def open_command_pv(self) -> str:
        """PV written to open the shutter."""
        return self.open_pv or f"{self.prefix}Open"

    @property
    def close_command_pv(self) -> str:
        """PV written to close the shutter."""
        return self.close_pv or f"{self.prefix}Close"


class EpicsTXMConfig(_Section):
    """PVs of the whole microscope.

    Attributes
    ----------
    camera
        The area detector.
    rotation
        The rotation stage (degrees).
    sample_x
        The sample translation that moves the sample out of the beam for flats (optional).
    shutter
        The beam shutter, closed for darks (optional).
    """

    camera: CameraConfig
    rotation: MotorConfig
    sample_x: MotorConfig | None = None
    shutter: ShutterConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_names(cls, data: Any) -> Any:
        # Motors are named after their role unless the file names them.
        if isinstance(data, Mapping):
            data = dict(data)
            for role, default in (("rotation", "rot"), ("sample_x", "sample_x")):
                section = data.get(role)
                if isinstance(section, Mapping) and "name" not in section:
                    data[role] = {**section, "name": default}
        return data

    @model_validator(mode="after")
    def _distinct_names(self) -> EpicsTXMConfig:
        names = [s.name for s in (self.camera, self.rotation, self.sample_x, self.shutter)
                 if s is not None]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"device names must be distinct, {duplicated} used more than once")
        return self


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Field names of the (sub)model at ``loc`` (without its last element)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        sub = [a for a in getattr(field.annotation, "__args__", (field.annotation,))
               if isinstance(a, type) and issubclass(a, BaseModel)]
        if not sub:
            return None
        model = sub[0]
    return list(model.model_fields)


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        key = ".".join(str(p) for p in loc)
        if err["type"] == "missing":
            lines.append(f"missing required key {key!r}")
        elif err["type"] == "extra_forbidden":
            allowed = _allowed_keys(EpicsTXMConfig, loc)
            lines.append(f"unknown key {key!r} (allowed: {', '.join(allowed or [])})")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            shown = "" if err["type"].startswith("value_error") else f", got {err['input']!r}"
            lines.append(f"{key}: {msg}{shown}" if key else f"{msg}{shown}")
    return f"invalid EPICS configuration ({source}):\n  " + "\n  ".join(lines)


def _from_environment(env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    data: dict[str, dict[str, str]] = {}
    for var, (section, key) in ENV_VARIABLES.items():
        value = env.get(var, "").strip()
        if value:
            data.setdefault(section, {})[key] = value
    if not data:
        raise EpicsConfigError(
            f"no EPICS configuration: set {ENV_CONFIG_FILE} to a YAML file or the variables "
            f"{', '.join(ENV_VARIABLES)} (at least LOWDOSE_PV_CAMERA, "
            "LOWDOSE_CAMERA_WRITE_PATH and LOWDOSE_PV_ROTATION)")
    names = sorted(v for v in ENV_VARIABLES if env.get(v, "").strip())
    return data, f"environment variables {', '.join(names)}"


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise EpicsConfigError(f"cannot read EPICS configuration file {str(path)!r}: "
                               f"{exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EpicsConfigError(f"EPICS configuration file {str(path)!r} is not valid YAML: "
                               f"{exc}") from None


def load_epics_config(source: str | os.PathLike[str] | Mapping[str, Any] | EpicsTXMConfig
                      | None = None, *, env: Mapping[str, str] | None = None
                      ) -> EpicsTXMConfig:
    """Read and validate the EPICS configuration of the TXM.

    Parameters
    ----------
    source
        A YAML file, a mapping with the same structure, an :class:`EpicsTXMConfig`
        (returned as is), or ``None`` to read the environment: the YAML file named by
        ``LOWDOSE_EPICS_CONFIG``, otherwise the ``LOWDOSE_PV_*`` variables (see the
        module docstring).
    env
        Environment to read when ``source`` is ``None`` (default: ``os.environ``).

    Returns
    -------
    EpicsTXMConfig

    Raises
    ------
    EpicsConfigError
        (a ``ValueError``) if the file cannot be read, the environment is inconsistent or
        a key is missing, unknown or holds a value that is not allowed; the message names
        every such key.
    """
    if isinstance(source, EpicsTXMConfig):
        return source
    if source is None:
        env = os.environ if env is None else env
        file = env.get(ENV_CONFIG_FILE, "").strip()
        if file:
            set_vars = sorted(v for v in ENV_VARIABLES if env.get(v, "").strip())
            if set_vars:
                raise EpicsConfigError(f"set either {ENV_CONFIG_FILE} or the variables "
                                       f"{', '.join(set_vars)}, not both")
            data, origin = _read_yaml(Path(file)), f"{ENV_CONFIG_FILE}={file}"
        else:
            data, origin = _from_environment(env)
    elif isinstance(source, Mapping):
        data, origin = source, "mapping"
    elif isinstance(source, str | os.PathLike):
        data, origin = _read_yaml(Path(source)), str(source)
    else:
        raise EpicsConfigError(f"EPICS configuration source must be a YAML path, a mapping, an "
                               f"EpicsTXMConfig or None, got {type(source).__name__}")
    if not isinstance(data, Mapping):
        raise EpicsConfigError(f"EPICS configuration ({origin}) must be a mapping with the keys "
                               f"{', '.join(EpicsTXMConfig.model_fields)}, got "
                               f"{type(data).__name__}")
    try:
        return EpicsTXMConfig.model_validate(data)
    except ValidationError as exc:
        raise EpicsConfigError(_describe(exc, origin)) from None
