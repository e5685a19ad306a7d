"""Reading a test's metric from what the test produced.

A test can report its metric in four places; they are searched in a fixed order so that the
answer never depends on chance: pytest-benchmark's statistics, ``record_property``,
``benchmark.extra_info``, and finally ``name: value`` / ``name = value`` lines in the
captured output (Weco's convention for eval commands).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

#: pytest-benchmark statistics that can serve as a metric, with their natural direction.
BENCHMARK_STATS: dict[str, bool] = {
    "min": False,
    "max": False,
    "mean": False,
    "median": False,
    "stddev": False,
    "iqr": False,
    "q1": False,
    "q3": False,
    "ld15iqr": False,
    "hd15iqr": False,
    "total": False,
    "ops": True,
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan"


@dataclass
class Measurement:
    """Everything one test run reported that could hold a metric (JSON-friendly)."""

    benchmark: dict[str, float] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    extra_info: dict[str, Any] = field(default_factory=dict)
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "samples": self.samples,
            "properties": self.properties,
            "extra_info": self.extra_info,
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(
            benchmark=dict(data.get("benchmark") or {}),
            samples=list(data.get("samples") or []),
            properties=dict(data.get("properties") or {}),
            extra_info=dict(data.get("extra_info") or {}),
            output=data.get("output") or "",
        )

    def recorded(self) -> str:
        """A short description of what was recorded, for 'metric missing' messages."""
        parts = []
        if self.benchmark:
            parts.append("benchmark stats (" + ", ".join(sorted(self.benchmark)) + ")")
        if self.properties:
            parts.append("record_property(" + ", ".join(sorted(self.properties)) + ")")
        if self.extra_info:
            parts.append("extra_info(" + ", ".join(sorted(self.extra_info)) + ")")
        names = sorted(output_metrics(self.output))
        if names:
            parts.append("output lines (" + ", ".join(names) + ")")
        return "; ".join(parts) if parts else "nothing"


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    try:  # numpy / torch scalars
        return float(value)
    except (TypeError, ValueError):
        return None


def output_metrics(text: str) -> dict[str, float]:
    """``name: value`` and ``name = value`` lines; the last line for a name wins."""
    found: dict[str, float] = {}
    for match in re.finditer(
        rf"^\s*([A-Za-z_][\w.\-]*)\s*[:=]\s*({_NUMBER})\s*$", text, re.MULTILINE
    ):
        value = _as_number(match.group(2))
        if value is not None:
            found[match.group(1)] = value
    return found


def resolve(measurement: Measurement, name: str) -> tuple[float | None, str]:
    """The metric's value and where it came from ("" when absent)."""
    if name in measurement.benchmark:
        return _as_number(measurement.benchmark[name]), "benchmark"
    if name in measurement.properties:
        return _as_number(measurement.properties[name]), "record_property"
    if name in measurement.extra_info:
        return _as_number(measurement.extra_info[name]), "extra_info"
    from_output = output_metrics(measurement.output)
    if name in from_output:
        return from_output[name], "output"
    return None, ""


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def benchmark_measurement(fixture: Any) -> tuple[dict[str, float], list[float], dict[str, Any]]:
    """Statistics, raw per-round samples and extra_info of a pytest-benchmark fixture."""
    if fixture is None:
        return {}, [], {}
    extra = dict(getattr(fixture, "extra_info", {}) or {})
    metadata = getattr(fixture, "stats", None)
    stats = getattr(metadata, "stats", None)
    if not stats:
        return {}, [], extra
    values: dict[str, float] = {}
    for stat in BENCHMARK_STATS:
        try:
            number = _as_number(getattr(stats, stat))
        except Exception:  # a statistic that needs more rounds than were run
            number = None
        if number is not None:
            values[stat] = number
    values["rounds"] = float(len(stats.data))
    return values, [float(x) for x in stats.data], extra


def measure_item(item: Any, stdout: str) -> Measurement:
    """Collect a finished test item's measurement (used in-process and in the worker)."""
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    benchmark, samples, extra = benchmark_measurement(fixture)
    properties = {}
    for key, value in getattr(item, "user_properties", []):
        number = _as_number(value)
        properties[str(key)] = number if number is not None else str(value)
    return Measurement(
        benchmark=benchmark,
        samples=samples,
        properties=properties,
        extra_info={k: v for k, v in extra.items() if _as_number(v) is not None},
        output=stdout[-20000:],
    )


def format_value(value: float | None) -> str:
    if value is None:
        return "missing"
    return f"{value:.6g}"


@dataclass(frozen=True)
class HotSpot:
    """One of the target's functions in the profile of a benchmarked call
    (evaluation/profile.py): data the evaluation, the search and the prompts share."""

    function: str
    line: int
    #: Shares of the call's time: in the function's own code, and with what it calls.
    own: float
    total: float
    calls: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HotSpot:
        return cls(str(data["function"]), int(data["line"]), float(data["own"]),
                   float(data["total"]), int(data["calls"]))
