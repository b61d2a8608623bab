"""Chemical elements and their X-ray fluorescence lines, from xraylib.

Each element is measured through one line family: the K lines (Kα1, Kα2, Kβ) for
Z ≤ 50 when the incident energy lies above the K edge, the L lines (Lα1, Lα2, Lβ1,
Lβ2, Lγ1) otherwise. Fluorescence production cross sections are
``xraylib.CS_FluorLine_Kissel`` (photoionisation, fluorescence yield, radiative rate
and Coster-Kronig / cascade transitions), in cm²/g.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import xraylib

__all__ = [
    "K_LINES",
    "L_LINES",
    "MAX_K_FAMILY_Z",
    "FluorescenceLine",
    "atomic_number",
    "check_elements",
    "excitable_lines",
    "fluorescence_cross_section",
    "line_energy",
    "line_family",
]

#: Heaviest element measured through its K lines (heavier ones: L lines).
MAX_K_FAMILY_Z = 50

#: K lines: name → xraylib line macro (Kβ: all K-M/N transitions together).
K_LINES: dict[str, int] = {"Ka1": xraylib.KL3_LINE, "Ka2": xraylib.KL2_LINE,
                           "Kb": xraylib.KB_LINE}
#: L lines: name → xraylib line macro.
L_LINES: dict[str, int] = {"La1": xraylib.LA1_LINE, "La2": xraylib.LA2_LINE,
                           "Lb1": xraylib.LB1_LINE, "Lb2": xraylib.LB2_LINE,
                           "Lg1": xraylib.LG1_LINE}
_ALL_LINES = {**K_LINES, **L_LINES}
_EDGES = {"K": xraylib.K_SHELL, "L": xraylib.L3_SHELL}
_EXAMPLES = "'P', 'S', 'K', 'Ca', 'Fe', 'Cu', 'Zn'"


@dataclass(frozen=True)
class FluorescenceLine:
    """One fluorescence line of an element, excited at a given incident energy.

    Attributes
    ----------
    element
        Chemical symbol.
    name
        Line name (``"Ka1"``, ``"Lb1"``, ...; see :data:`K_LINES`, :data:`L_LINES`).
    energy_kev
        Photon energy of the line, keV.
    cross_section
        Fluorescence production cross section at the incident energy, cm²/g.
    """

    element: str
    name: str
    energy_kev: float
    cross_section: float


def atomic_number(symbol: str) -> int:
    """Atomic number of a chemical symbol (case-sensitive: ``"Fe"``, not ``"fe"``).

    Raises
    ------
    ValueError
        If xraylib does not know the symbol.
    """
    try:
        return int(xraylib.SymbolToAtomicNumber(str(symbol)))
    except ValueError:
        raise ValueError(f"unknown chemical element {symbol!r}: expected a symbol such as "
                         f"{_EXAMPLES} (case-sensitive)") from None


def check_elements(elements: Iterable[str]) -> tuple[str, ...]:
    """The symbols, checked: known to xraylib, none repeated, at least one.

    Raises
    ------
    ValueError
        Naming the unknown or repeated symbol, or for an empty selection.
    """
    if isinstance(elements, str):
        elements = (elements,)
    symbols = tuple(str(e) for e in elements)
    if not symbols:
        raise ValueError(f"no elements given: expected symbols such as {_EXAMPLES}")
    seen: set[str] = set()
    for symbol in symbols:
        atomic_number(symbol)
        if symbol in seen:
            raise ValueError(f"element {symbol!r} is given twice in {symbols}")
        seen.add(symbol)
    return symbols


def line_family(symbol: str, energy_kev: float | None = None) -> str:
    """``"K"`` or ``"L"``: the line family an element is measured through.

    K for Z ≤ :data:`MAX_K_FAMILY_Z`, unless ``energy_kev`` is given and lies below
    the K edge; L otherwise.
    """
    z = atomic_number(symbol)
    if z > MAX_K_FAMILY_Z:
        return "L"
    if energy_kev is not None and float(energy_kev) <= xraylib.EdgeEnergy(z, xraylib.K_SHELL):
        return "L"
    return "K"


def _line_macro(name: str) -> int:
    try:
        return _ALL_LINES[name]
    except KeyError:
        raise ValueError(f"unknown line {name!r}: expected one of {tuple(_ALL_LINES)}"
                         ) from None


def line_energy(symbol: str, line: str = "Ka1") -> float:
    """Energy of a fluorescence line, keV (e.g. Fe Ka1: 6.404 keV).

    Raises
    ------
    ValueError
        For an unknown element or line, or a line the element does not have.
    """
    z = atomic_number(symbol)
    try:
        return float(xraylib.LineEnergy(z, _line_macro(line)))
    except ValueError as exc:
        if str(exc).startswith("unknown line"):
            raise
        raise ValueError(f"{symbol} has no {line} line in xraylib ({exc})") from None


def fluorescence_cross_section(symbol: str, line: str, energy_kev: float) -> float:
    """Fluorescence production cross section of a line, cm²/g (0: not excited).

    Parameters
    ----------
    symbol
        Chemical symbol.
    line
        Line name (see :data:`K_LINES`, :data:`L_LINES`).
    energy_kev
        Incident photon energy, keV.
    """
    z = atomic_number(symbol)
    macro = _line_macro(line)
    energy = _check_energy(energy_kev)
    try:
        return max(float(xraylib.CS_FluorLine_Kissel(z, macro, energy)), 0.0)
    except ValueError:  # shell not excited, or no such line for this Z
        return 0.0


def excitable_lines(elements: str | Iterable[str], energy_kev: float
                    ) -> list[FluorescenceLine]:
    """The lines of each element's family that an incident energy excites.

    Parameters
    ----------
    elements
        One symbol or several.
    energy_kev
        Incident photon energy, keV.

    Returns
    -------
    list of FluorescenceLine
        In the order of ``elements``, then of the family's lines; lines with a zero
        cross section (edge above ``energy_kev``, no data) are left out.
    """
    energy = _check_energy(energy_kev)
    lines: list[FluorescenceLine] = []
    for symbol in check_elements(elements):
        family = K_LINES if line_family(symbol, energy) == "K" else L_LINES
        for name in family:
            cross_section = fluorescence_cross_section(symbol, name, energy)
            if cross_section > 0:
                lines.append(FluorescenceLine(symbol, name, line_energy(symbol, name),
                                              cross_section))
    return lines


def _check_energy(energy_kev: float) -> float:
    energy = float(energy_kev)
    if not 1.0 <= energy <= 200.0:
        raise ValueError(f"energy_kev must be between 1 and 200 keV, got {energy_kev!r}")
    return energy
